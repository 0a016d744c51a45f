"""Mining a corpus file: output equals in-memory mining, workers, shards, resume, bad inputs, the CLI."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from spart.data import Passage
from spart.training.spans import (
    DocumentSpans,
    SpanMiningConfig,
    mine_spans,
    mine_spans_to_file,
    parse_shard,
    read_spans,
)

TOPICS = ["eiffel tower", "river seine", "louvre museum", "notre dame cathedral", "latin quarter"]


def _write_corpus(path: Path, n_docs: int = 30, per_doc: int = 4) -> list[Passage]:
    rng = np.random.default_rng(0)
    passages = []
    for d in range(n_docs):
        for p in range(per_doc + d % 3):
            words = [TOPICS[i] for i in rng.integers(0, len(TOPICS), size=4)]
            text = f"In part {p} of {d}: " + ", then ".join(words) + f" near gate {d * 7}."
            passages.append(Passage(id=f"w{len(passages) + 1}", text=text, title=f"Doc {d}"))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["id", "text", "title"])
        for passage in passages:
            writer.writerow([passage.id, passage.text, passage.title])
    return passages


def _lines(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as handle:
        return [json.loads(line) for line in handle]


def test_file_output_matches_in_memory_mining(tmp_path):
    corpus = tmp_path / "corpus.tsv"
    passages = _write_corpus(corpus)
    out = tmp_path / "spans.jsonl.gz"
    stats = mine_spans_to_file(corpus, out, workers=1, batch_passages=7, progress=False)
    expected = [d for d in mine_spans(passages, batch_passages=1000) if d.clusters]
    assert list(read_spans(out)) == expected
    assert stats.passages == len(passages) and stats.documents == 30
    assert stats.clusters == sum(len(d.clusters) for d in expected) > 0
    assert json.loads((tmp_path / "spans.jsonl.gz.stats.json").read_text())["stats"]["clusters"] == stats.clusters
    assert not (tmp_path / "spans.jsonl.gz.partial").exists()


def test_two_workers_give_the_same_file(tmp_path):
    corpus = tmp_path / "corpus.tsv"
    _write_corpus(corpus)
    mine_spans_to_file(corpus, tmp_path / "one.jsonl.gz", workers=1, batch_passages=10, progress=False)
    mine_spans_to_file(corpus, tmp_path / "two.jsonl.gz", workers=2, batch_passages=10, progress=False)
    assert _lines(tmp_path / "one.jsonl.gz") == _lines(tmp_path / "two.jsonl.gz")


def test_shards_partition_the_documents(tmp_path):
    corpus = tmp_path / "corpus.tsv"
    _write_corpus(corpus)
    mine_spans_to_file(corpus, tmp_path / "all.jsonl.gz", progress=False)
    shards = []
    for i in range(3):
        mine_spans_to_file(corpus, tmp_path / f"s{i}.jsonl.gz", shard=(i, 3), batch_passages=5, progress=False)
        shards.append(_lines(tmp_path / f"s{i}.jsonl.gz"))
    assert [d["document"] for d in shards[1]] == [f"Doc {d}" for d in range(1, 30, 3)]
    merged = sorted((d for shard in shards for d in shard), key=lambda d: int(d["document"].split()[1]))
    assert merged == _lines(tmp_path / "all.jsonl.gz")


def test_interrupted_run_resumes_to_the_same_output(tmp_path):
    corpus = tmp_path / "corpus.tsv"
    passages = _write_corpus(corpus)
    mine_spans_to_file(corpus, tmp_path / "ref.jsonl.gz", progress=False)

    def crashing_reader(path):
        for i, passage in enumerate(passages):
            if i == 70:
                raise KeyboardInterrupt  # e.g. the job was killed mid-shard
            yield passage

    out = tmp_path / "run.jsonl.gz"
    with pytest.raises(KeyboardInterrupt):
        mine_spans_to_file(
            corpus, out, batch_passages=9, progress=False, checkpoint_seconds=0, read_passages=crashing_reader
        )
    assert not out.exists()
    record = json.loads((tmp_path / "run.jsonl.gz.progress.json").read_text())
    assert 0 < record["documents"] < 30
    # Garbage after the recorded offset (a half-written gzip member) must be cut off on resume.
    with (tmp_path / "run.jsonl.gz.partial").open("ab") as handle:
        handle.write(b"\x1f\x8b half a member")
    stats = mine_spans_to_file(corpus, out, batch_passages=9, progress=False, checkpoint_seconds=0)
    assert stats.resumed_from_documents == record["documents"]
    assert stats.documents == 30 and stats.passages == len(passages)
    assert _lines(out) == _lines(tmp_path / "ref.jsonl.gz")
    assert not (tmp_path / "run.jsonl.gz.progress.json").exists()


def test_resume_with_other_settings_is_refused(tmp_path):
    corpus = tmp_path / "corpus.tsv"
    passages = _write_corpus(corpus)

    def crashing_reader(path):
        for i, passage in enumerate(passages):
            if i == 50:
                raise KeyboardInterrupt
            yield passage

    out = tmp_path / "run.jsonl.gz"
    with pytest.raises(KeyboardInterrupt):
        mine_spans_to_file(
            corpus, out, batch_passages=5, progress=False, checkpoint_seconds=0, read_passages=crashing_reader
        )
    with pytest.raises(ValueError, match="other settings"):
        mine_spans_to_file(corpus, out, SpanMiningConfig(max_span_length=5), progress=False)
    # --no-resume restarts cleanly.
    stats = mine_spans_to_file(corpus, out, SpanMiningConfig(max_span_length=5), progress=False, resume=False)
    assert stats.resumed_from_documents == 0 and out.exists()


def test_bad_inputs(tmp_path):
    corpus = tmp_path / "corpus.tsv"
    _write_corpus(corpus, n_docs=2)
    with pytest.raises(FileNotFoundError):
        mine_spans_to_file(tmp_path / "missing.tsv", tmp_path / "x.jsonl.gz", progress=False)
    with pytest.raises(ValueError, match="jsonl.gz"):
        mine_spans_to_file(corpus, tmp_path / "x.json", progress=False)
    with pytest.raises(ValueError):
        mine_spans_to_file(corpus, tmp_path / "x.jsonl.gz", shard=(3, 3), progress=False)
    for bad in ["1", "a/b", "2/2", "0/0"]:
        with pytest.raises(ValueError):
            parse_shard(bad)
    assert parse_shard("1/4") == (1, 4)
    with pytest.raises(FileNotFoundError):
        list(read_spans(tmp_path / "none.jsonl.gz"))
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(gzip.compress(b'{"document": "x"}\n'))
    with pytest.raises(ValueError, match="broken.jsonl.gz:1"):
        list(read_spans(broken))


def test_cli_mines_a_corpus(tmp_path, capsys):
    from spart.cli import main

    corpus = tmp_path / "corpus.tsv"
    _write_corpus(corpus, n_docs=5)
    out = tmp_path / "cli.jsonl.gz"
    assert main(["mine-spans", str(corpus), "-o", str(out), "--workers", "1", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["documents"] == 5
    assert all(isinstance(DocumentSpans.from_json(d), DocumentSpans) for d in _lines(out))
    assert main(["mine-spans", str(corpus), "-o", str(out), "--shard", "5/2"]) == 2


def test_a_finished_output_is_kept_unless_overwritten(tmp_path):
    corpus = tmp_path / "corpus.tsv"
    _write_corpus(corpus, n_docs=6)
    out = tmp_path / "done.jsonl.gz"
    first = mine_spans_to_file(corpus, out, progress=False)
    out.write_bytes(gzip.compress(b""))  # stands in for the finished file: a second call must not mine again
    again = mine_spans_to_file(corpus, out, progress=False)
    assert again == first and _lines(out) == []
    remined = mine_spans_to_file(corpus, out, progress=False, overwrite=True)
    assert remined.clusters == first.clusters > 0 and len(_lines(out)) > 0


def test_a_corrupt_progress_record_is_a_clear_error(tmp_path):
    corpus = tmp_path / "corpus.tsv"
    _write_corpus(corpus, n_docs=2)
    out = tmp_path / "run.jsonl.gz"
    (tmp_path / "run.jsonl.gz.partial").write_bytes(b"x")
    (tmp_path / "run.jsonl.gz.progress.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt progress record"):
        mine_spans_to_file(corpus, out, progress=False)
    stats = mine_spans_to_file(corpus, out, progress=False, resume=False)
    assert stats.documents == 2 and out.exists()
