"""``generate_questions``: sample passages, write questions, filter them by round trip, write the pseudo data set.

Resumable: each batch of replies is appended to ``candidates.jsonl`` and synced before the next batch starts;
a rerun with the same settings continues after the last complete batch (a torn last line is dropped), and a
rerun with other settings is refused rather than mixing two runs. The passage sample and each batch's sampling
seed depend only on the settings, so a resumed run writes what an uninterrupted one would have.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from spart.atomic import atomic_write
from spart.data.passages import Passage
from spart.generation.prompts import clean_question
from spart.generation.pseudo_dataset import DEV, TRAIN, dev_split, write_corpus, write_pseudo_dataset
from spart.generation.roundtrip import source_ranks
from spart.generation.sampling import sample_passages

logger = logging.getLogger(__name__)

CANDIDATES = "candidates.jsonl"
SETTINGS = "generation.json"
STATS = "generation-stats.json"


@dataclass(frozen=True)
class GenerationSettings:
    """How many questions, and how they are filtered and split.

    :param num_passages: passages that get a question (spread across documents; see
        :func:`~spart.generation.sampling.sample_passages`).
    :param seed: passage sample, sampling and split seed.
    :param filter_model: dense model of the round-trip filter (``None`` = the packaged MiniLM).
    :param filter_top_k: keep a question when its source passage ranks in this top-k; ``0`` keeps all.
    :param dev_fraction: share of kept questions in ``pseudo-dev``.
    :param max_dev_questions: at most this many in ``pseudo-dev`` (``None``: no cap); the audit reranks every
        pseudo-dev question's candidates with each teacher, so its cost follows this number.
    :param min_passage_words: shorter passages get no question.
    :param student_passage_tokens: show the generator each passage as the encoder being adapted reads it in
        training: the text cut after the last token that fits in this many of ``filter_model``'s passage tokens
        (title and special tokens included; :meth:`~spart.encoders.DualEncoder.passage_view`), so no question
        asks about text the student never sees, and the prompt is shorter. ``None`` shows the whole passage (up to
        the prompt's ``max_passage_words``).
    """

    num_passages: int = 1000
    seed: int = 0
    filter_model: str | None = None
    filter_top_k: int = 20
    dev_fraction: float = 0.2
    min_passage_words: int = 20
    max_dev_questions: int | None = 500
    student_passage_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.num_passages <= 0:
            raise ValueError(f"num_passages must be positive, got {self.num_passages}")
        if self.filter_top_k < 0:
            raise ValueError(f"filter_top_k must be >= 0 (0 keeps every question), got {self.filter_top_k}")
        if not 0 <= self.dev_fraction < 1:
            raise ValueError(f"dev_fraction must be in [0, 1), got {self.dev_fraction}")
        if self.max_dev_questions is not None and self.max_dev_questions <= 0:
            raise ValueError(f"max_dev_questions must be positive (or None: no cap), got {self.max_dev_questions}")
        if self.student_passage_tokens is not None and self.student_passage_tokens < 8:
            raise ValueError(
                "student_passage_tokens must be at least 8 (or None: whole passages), "
                f"got {self.student_passage_tokens}"
            )


# What a run recorded before a setting existed did, for the settings that change the questions written.
_BEFORE_RECORDED = {"student_passage_tokens": None}


def _same_run(earlier: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether ``now`` continues the run recorded as ``earlier``: every setting equal, except that one the record
    lacks is newer than the run and taken as given now (as ``spart adapt`` does with its options), unless it
    changes what the generator is shown and differs from what the run did then (``_BEFORE_RECORDED``)."""
    if {k: v for k, v in earlier.items() if k != "generation"} != {k: v for k, v in now.items() if k != "generation"}:
        return False
    recorded = earlier.get("generation", {})
    if any(k not in recorded and now["generation"].get(k) != v for k, v in _BEFORE_RECORDED.items()):
        return False
    return all(k in now["generation"] and now["generation"][k] == v for k, v in recorded.items())


def _read_candidates(path: Path) -> list[dict[str, Any]]:
    """Complete records of an earlier run; a torn last line (a crash mid-write) is cut off the file."""
    if not path.exists():
        return []
    records, good_bytes = [], 0
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
            good_bytes += len(line)
    if good_bytes != path.stat().st_size:
        with open(path, "r+b") as f:
            f.truncate(good_bytes)
    return records


def _append(path: Path, records: list[dict[str, Any]]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def generate_questions(
    passages: list[Passage],
    out_dir: str | Path,
    generator: Any,
    settings: GenerationSettings | None = None,
    *,
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write a pseudo-labelled BEIR data set for ``passages`` into ``out_dir`` (see the module docstring).

    :param passages: the corpus, in order.
    :param out_dir: output directory (``corpus.jsonl``, ``queries.jsonl``, ``qrels/pseudo-{train,dev}.tsv``,
        ``pseudo-train-questions.txt``, ``candidates.jsonl`` with every reply and its fate, stats JSON).
    :param generator: a :class:`~spart.generation.QuestionGenerator` (or anything with ``warm_up``,
        ``settings()``, ``batch_size`` and ``generate(passages, seed)``).
    :param settings: counts, filter and split.
    :param progress: progress bar.
    :param overwrite: discard an earlier run with other settings instead of refusing.
    :returns: the statistics (also written to ``generation-stats.json``).
    """
    settings = settings or GenerationSettings()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    generator.warm_up()
    recorded = {"generator": generator.settings(), "generation": asdict(settings), "corpus_size": len(passages)}
    settings_path, candidates_path = out / SETTINGS, out / CANDIDATES
    if settings_path.exists() and not _same_run(json.loads(settings_path.read_text()), recorded):
        if not overwrite:
            raise ValueError(
                f"{out} holds questions generated with other settings ({settings_path}); "
                "use another --out, or --overwrite to start again"
            )
        candidates_path.unlink(missing_ok=True)
    with atomic_write(settings_path, "w", encoding="utf-8") as f:
        json.dump(recorded, f, indent=1)

    order = sample_passages(passages, settings.num_passages, settings.seed, min_words=settings.min_passage_words)
    batch = generator.batch_size
    done = _read_candidates(candidates_path)
    if len(done) % batch:  # a batch cut short by a crash is generated again, whole, with its own seed
        done = done[: len(done) - len(done) % batch]
        with atomic_write(candidates_path, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in done)
    if [r["row"] for r in done] != order[: len(done)]:
        raise ValueError(f"{candidates_path} does not match this corpus and seed; use --overwrite to start again")
    start = time.perf_counter()
    from tqdm.auto import tqdm

    shown = (
        StudentView(settings.filter_model, settings.student_passage_tokens) if settings.student_passage_tokens else None
    )
    bar = tqdm(total=len(order), initial=len(done), desc="questions", unit="q", disable=not progress)
    generated = 0
    for begin in range(len(done), len(order), batch):
        rows = order[begin : begin + batch]
        batch_passages = [passages[r] for r in rows]
        if shown is not None:
            batch_passages = shown(batch_passages)
        replies = generator.generate(batch_passages, seed=settings.seed * 7919 + begin // batch)
        records = []
        for row, reply in zip(rows, replies):
            question, reason = clean_question(reply)
            records.append(
                {"row": row, "passage_id": passages[row].id, "reply": reply, "question": question, "reason": reason}
            )
        _append(candidates_path, records)
        generated += len(records)
        bar.update(len(records))
    bar.close()
    gen_seconds = time.perf_counter() - start
    candidates = _read_candidates(candidates_path)
    return _filter_and_write(
        passages, out, candidates, settings, generated, gen_seconds, progress, getattr(generator, "prompt", None)
    )


class StudentView:
    """Passages cut to what a student encoder's passage tower reads in ``max_length`` tokens
    (:meth:`~spart.encoders.DualEncoder.passage_view`); ``model`` ``None`` is the packaged MiniLM.

    Usage::

        shown = StudentView(None, 128)(passages)  # same ids and titles, texts cut
    """

    def __init__(self, model: str | None, max_length: int) -> None:
        from spart.encoders import DualEncoder
        from spart.encoders.loading import packaged_minilm_path

        self.encoder = DualEncoder.load(model or packaged_minilm_path())
        self.max_length = max_length

    def __call__(self, passages: list[Passage]) -> list[Passage]:
        texts = self.encoder.passage_view([p.text for p in passages], [p.title for p in passages], self.max_length)
        return [replace(p, text=t) for p, t in zip(passages, texts)]


def _filter_and_write(
    passages, out, candidates, settings, generated, gen_seconds, progress, generator_prompt=None
) -> dict[str, Any]:
    examples = {q.lower() for q in getattr(generator_prompt, "examples", ())}
    for c in candidates:  # cleaned again here, so a run resumed after a cleaning change applies it to every reply
        c["question"], c["reason"] = clean_question(c["reply"])
        if c["question"] and c["question"].lower() in examples:  # a copied style example is not about its passage
            c["question"], c["reason"] = None, "copied an example"
    parsed = [c for c in candidates if c["question"]]
    seen, unique = set(), []
    for c in parsed:  # the same question for two passages is ambiguous as a label: keep the first
        key = c["question"].lower()
        if key not in seen:
            seen.add(key)
            unique.append(c)
    start = time.perf_counter()
    ranks = _round_trip(passages, unique, settings, progress) if unique else np.zeros(0, dtype=np.int64)
    filter_seconds = time.perf_counter() - start
    kept = [
        (f"gen:{c['row']}", c["question"], c["passage_id"])
        for c, rank in zip(unique, ranks)
        if settings.filter_top_k == 0 or rank <= settings.filter_top_k
    ]
    dev_ids = dev_split([q for q, _, _ in kept], settings.dev_fraction, settings.seed, settings.max_dev_questions)
    write_corpus(passages, out / "corpus.jsonl")
    counts = write_pseudo_dataset(out, kept, dev_ids)
    with atomic_write(out / "round-trip.jsonl", "w", encoding="utf-8") as f:
        for c, rank in zip(unique, ranks):
            f.write(json.dumps({"id": f"gen:{c['row']}", "question": c["question"], "rank": int(rank)}) + "\n")
    reasons: dict[str, int] = {}
    for c in candidates:
        reasons[c["reason"]] = reasons.get(c["reason"], 0) + 1
    stats = {
        "passages": len(candidates),
        "parsed": len(parsed),
        "unique": len(unique),
        "kept": len(kept),
        "parse_rate": len(parsed) / max(len(candidates), 1),
        "filter_pass_rate": len(kept) / max(len(unique), 1),
        "reasons": reasons,
        TRAIN: counts[TRAIN],
        DEV: counts[DEV],
        "generated_this_run": generated,
        "generation_seconds_this_run": round(gen_seconds, 1),
        "questions_per_s_this_run": round(generated / gen_seconds, 3) if generated and gen_seconds > 0 else None,
        "filter_seconds": round(filter_seconds, 1),
        "median_source_rank": float(np.median(ranks)) if len(ranks) else None,
    }
    with atomic_write(out / STATS, "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=1)
    return stats


def _round_trip(passages, unique, settings, progress) -> np.ndarray:
    from spart.encoders import DualEncoder
    from spart.encoders.loading import packaged_minilm_path
    from spart.evaluation.cache import encode_corpus_cached

    encoder = DualEncoder.load(settings.filter_model or packaged_minilm_path())
    corpus = encode_corpus_cached(encoder, passages, show_progress=progress)
    questions = encoder.encode_queries([c["question"] for c in unique], show_progress=progress)
    row_of = {p.id: i for i, p in enumerate(passages)}
    return source_ranks(questions, corpus, [row_of[c["passage_id"]] for c in unique])
