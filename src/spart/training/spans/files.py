"""Mining a corpus file into a span file, by shard, resumable; and reading span files back.

The span file (``.jsonl.gz``) has one JSON line per document with clusters (:meth:`DocumentSpans.to_json`);
``<output>.stats.json`` holds the run's :class:`MiningStats`.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spart.atomic import write_text_atomic
from spart.training.spans.documents import iter_documents
from spart.training.spans.kernel import mine_documents_to_json
from spart.training.spans.semantics import DocumentSpans, SpanMiningConfig
from spart.training.spans.streaming import document_batches, mine_batches


def _mine_payload_encoded(
    payload: tuple[list[tuple[str, list[tuple[str, str]]]], SpanMiningConfig],
) -> tuple[bytes, dict[str, int]]:
    """Mine a batch and serialise it in the worker: one gzip member of JSON lines, plus its counts."""
    documents, config = payload
    encoded = mine_documents_to_json(documents, config)
    counts = {
        "eligible_documents": len(documents),
        "eligible_passages": sum(len(passages) for _, passages in documents),
        "documents_with_clusters": len(encoded.lines),
        "clusters": encoded.clusters,
        "occurrences": encoded.occurrences,
    }
    data = gzip.compress(("\n".join(encoded.lines) + "\n").encode("utf-8"), compresslevel=1) if encoded.lines else b""
    return data, counts


@dataclass
class MiningStats:
    """Counts of one mining run (a shard), written next to the output as ``<output>.stats.json``."""

    passages: int = 0
    documents: int = 0
    eligible_documents: int = 0
    eligible_passages: int = 0
    documents_with_clusters: int = 0
    clusters: int = 0
    occurrences: int = 0
    seconds: float = 0.0
    resumed_from_documents: int = 0

    def merge(self, counts: dict[str, int]) -> None:
        for name in ("eligible_documents", "eligible_passages", "documents_with_clusters", "clusters", "occurrences"):
            setattr(self, name, getattr(self, name) + counts[name])


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``"i/n"`` (0-based shard ``i`` of ``n``)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"shard must look like 'i/n' (e.g. 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard index must satisfy 0 <= i < n, got {text!r}")
    return index, count


def mine_spans_to_file(
    corpus: str | os.PathLike,
    output: str | os.PathLike,
    config: SpanMiningConfig | None = None,
    *,
    shard: tuple[int, int] = (0, 1),
    workers: int = 1,
    batch_passages: int = 2048,
    resume: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    checkpoint_seconds: float = 2.0,
    read_passages: Callable[[Any], Iterable[Any]] | None = None,
) -> MiningStats:
    """Mine a corpus file into ``output`` (JSONL.gz, one line per document that has clusters).

    Shard ``i/n`` mines the documents whose ordinal (counting every document of the corpus, in order) is
    ``i`` modulo ``n``. The shard is written to ``<output>.partial`` as a sequence of complete gzip
    members, one per batch, and ``<output>.progress.json`` records how many documents and bytes are done;
    an interrupted run resumes from there (bytes past the record are cut off), and the finished file is
    renamed to ``output`` at the end. An existing finished ``output`` is left alone (its recorded stats are
    returned) unless ``overwrite``.

    :param corpus: a DPR passages ``.tsv`` or a BEIR ``corpus.jsonl`` (read by :func:`spart.data.read_passages`).
    :param output: the ``.jsonl.gz`` file to produce.
    :param config: the mining semantics.
    :param shard: ``(i, n)``.
    :param workers: mining processes.
    :param batch_passages: passages per batch (one gzip member, one progress record).
    :param resume: continue a partial run (otherwise it restarts from scratch).
    :param overwrite: mine again even if ``output`` already exists (it is replaced only at the end).
    :param progress: show a tqdm bar (passages).
    :param checkpoint_seconds: least time between two progress records.
    :param read_passages: passage reader override (default :func:`spart.data.read_passages`).
    :returns: the run's :class:`MiningStats`.
    """
    config = config or SpanMiningConfig()
    run = _check_arguments(corpus, output, config, shard, workers, batch_passages)
    if run.output.exists() and not overwrite:
        return _recorded_stats(run)
    done_docs, done_bytes, stats = _resume_point(run, resume)
    if read_passages is None:
        from spart.data import read_passages as read_passages_default

        read_passages = read_passages_default
    documents = _shard_documents(run, read_passages, skip=done_docs)
    stats = _mine_into_partial(
        run,
        documents,
        stats,
        done_docs,
        done_bytes,
        workers=workers,
        batch_passages=batch_passages,
        progress=progress,
        checkpoint_seconds=checkpoint_seconds,
    )
    _publish(run, stats)
    return stats


@dataclass(frozen=True)
class _ShardRun:
    """One shard's mining: its corpus, its files and the identity a resumed run must match."""

    corpus: Path
    output: Path
    shard: tuple[int, int]
    config: SpanMiningConfig

    def sibling(self, suffix: str) -> Path:
        return self.output.with_name(self.output.name + suffix)

    @property
    def identity(self) -> dict[str, Any]:
        return {"corpus": str(self.corpus.resolve()), "shard": list(self.shard), "config": self.config.to_dict()}


def _check_arguments(
    corpus: str | os.PathLike,
    output: str | os.PathLike,
    config: SpanMiningConfig,
    shard: tuple[int, int],
    workers: int,
    batch_passages: int,
) -> _ShardRun:
    """Validate the arguments of :func:`mine_spans_to_file` and create the output's directory."""
    shard_index, shard_count = shard
    if shard_count < 1 or not 0 <= shard_index < shard_count:
        raise ValueError(f"shard must satisfy 0 <= i < n, got {shard_index}/{shard_count}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if batch_passages < 1:
        raise ValueError(f"batch_passages must be >= 1, got {batch_passages}")
    corpus = Path(corpus)
    output = Path(output)
    if not corpus.exists():
        raise FileNotFoundError(f"{corpus}: no such corpus file")
    if not output.name.endswith(".jsonl.gz"):
        raise ValueError(f"{output}: output must end with .jsonl.gz")
    output.parent.mkdir(parents=True, exist_ok=True)
    return _ShardRun(corpus, output, (shard_index, shard_count), config)


def _recorded_stats(run: _ShardRun) -> MiningStats:
    """The stats recorded with a finished output (empty when none were recorded)."""
    stats_path = run.sibling(".stats.json")
    if stats_path.exists():
        return MiningStats(**json.loads(stats_path.read_text())["stats"])
    return MiningStats()


def _resume_point(run: _ShardRun, resume: bool) -> tuple[int, int, MiningStats]:
    """Where the shard continues: ``(documents done, bytes of the partial file to keep, stats so far)``.

    A progress record of a run with other settings is refused; without a usable record the shard restarts
    (an orphaned partial file is deleted).
    """
    partial, progress_path = run.sibling(".partial"), run.sibling(".progress.json")
    stats = MiningStats()
    done_docs = done_bytes = 0
    if resume and progress_path.exists() and partial.exists():
        try:
            record = json.loads(progress_path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{progress_path}: corrupt progress record ({error}); delete it to restart") from None
        if not isinstance(record, dict) or record.get("identity") != run.identity:
            raise ValueError(
                f"{progress_path}: records a run with other settings ({record.get('identity')}); "
                "delete it and the .partial file, or use the same settings"
            )
        done_docs, done_bytes = int(record["documents"]), int(record["bytes"])
        stats = MiningStats(**record["stats"])
        stats.resumed_from_documents = done_docs
    if done_bytes == 0 and partial.exists():
        partial.unlink()
    return done_docs, done_bytes, stats


def _shard_documents(
    run: _ShardRun, read_passages: Callable[[Any], Iterable[Any]], skip: int
) -> Iterator[tuple[str, list[Any]]]:
    """The shard's documents (ordinal ``i`` modulo ``n``) after the first ``skip`` of them."""
    shard_index, shard_count = run.shard
    skipped = 0
    for ordinal, (key, passages) in enumerate(iter_documents(read_passages(run.corpus), run.config)):
        if ordinal % shard_count != shard_index:
            continue
        if skipped < skip:
            skipped += 1
            continue
        yield key, passages


def _mine_into_partial(
    run: _ShardRun,
    documents: Iterable[tuple[str, list[Any]]],
    stats: MiningStats,
    done_docs: int,
    done_bytes: int,
    *,
    workers: int,
    batch_passages: int,
    progress: bool,
    checkpoint_seconds: float,
) -> MiningStats:
    """Append one gzip member per mined batch to the partial file (cut back to ``done_bytes`` first), recording
    progress at most every ``checkpoint_seconds``; returns the shard's stats (``stats`` continued)."""
    import time

    partial, progress_path = run.sibling(".partial"), run.sibling(".progress.json")
    identity = run.identity
    started = time.perf_counter()
    elapsed_before = stats.seconds
    last_record = 0.0
    with partial.open("r+b" if partial.exists() else "wb") as handle:
        handle.truncate(done_bytes)
        handle.seek(done_bytes)
        bar = _progress_bar(f"mine-spans {run.output.name}", stats.passages) if progress else None
        batches = document_batches(documents, run.config, batch_passages)
        for (data, counts), n_docs, n_passages in mine_batches(batches, run.config, workers, _mine_payload_encoded):
            handle.write(data)
            stats.merge(counts)
            stats.documents += n_docs
            stats.passages += n_passages
            done_docs += n_docs
            if bar is not None:
                bar.update(n_passages)
            now = time.perf_counter()
            if now - last_record >= checkpoint_seconds:
                handle.flush()
                os.fsync(handle.fileno())
                stats.seconds = elapsed_before + now - started
                write_text_atomic(
                    progress_path,
                    json.dumps(
                        {"identity": identity, "documents": done_docs, "bytes": handle.tell(), "stats": vars(stats)},
                        indent=1,
                    ),
                )
                last_record = now
        if bar is not None:
            bar.close()
        handle.flush()
        os.fsync(handle.fileno())
    if partial.stat().st_size == 0:
        # No document had clusters: still produce a valid (empty) gzip file.
        partial.write_bytes(gzip.compress(b""))
    stats.seconds = elapsed_before + time.perf_counter() - started
    return stats


def _progress_bar(description: str, initial: int) -> Any:
    # Imported only when a bar is shown: the import alone takes tens of milliseconds.
    from tqdm import tqdm

    return tqdm(total=None, unit="psg", desc=description, initial=initial)


def _publish(run: _ShardRun, stats: MiningStats) -> None:
    """Record the stats, then rename the partial file to the output and drop the progress record."""
    record = {"identity": run.identity, "stats": vars(stats)}
    write_text_atomic(run.sibling(".stats.json"), json.dumps(record, indent=1))
    os.replace(run.sibling(".partial"), run.output)
    run.sibling(".progress.json").unlink(missing_ok=True)


def read_spans(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> Iterator[DocumentSpans]:
    """Stream :class:`DocumentSpans` from one or more files written by :func:`mine_spans_to_file`.

    :raises FileNotFoundError: for a missing file.
    :raises ValueError: for a line that is not a document record (names file:line).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such span file")
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield DocumentSpans.from_json(json.loads(line))
                except (json.JSONDecodeError, KeyError, TypeError, IndexError) as error:
                    raise ValueError(f"{path}:{line_no}: not a span-mining record ({error})") from None
