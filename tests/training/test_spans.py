"""Recurring-span mining: the fast miner against the naive reference, plus streaming, sharding and resume."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spart.training.spans as spans_module
from spart.data import Passage
from spart.training._spans_reference import naive_mine_document
from spart.training.spans import (
    DocumentSpans,
    SpanMiningConfig,
    iter_documents,
    mine_documents,
    mine_spans,
    mine_spans_to_file,
    parse_shard,
    read_spans,
    select_passages,
    tokenize,
)
from spart.training.stopwords import NLTK_ENGLISH_STOPWORDS

# A tiny vocabulary so that spans recur often: content words, stopwords, capitalised words, numbers,
# punctuation and tokens that may not be part of a span (mixed letters/digits, underscores).
VOCAB = [
    "paris", "france", "river", "Seine", "New", "York", "city", "the", "of", "and", "in", "a",
    "1889", "42", "tower", ",", ".", "(", ")", "x2", "snake_case", "don't", "Über", "über", "İstanbul",
]


def _text(words: list[str]) -> str:
    return " ".join(words)


documents_strategy = st.lists(
    st.lists(st.lists(st.sampled_from(VOCAB), min_size=0, max_size=14).map(_text), min_size=1, max_size=5),
    min_size=1,
    max_size=4,
)

configs_strategy = st.builds(
    lambda min_len, extra, k, maximal: SpanMiningConfig(
        min_span_length=min_len, max_span_length=min_len + extra, min_span_passages=k, maximal_only=maximal
    ),
    st.integers(1, 3),
    st.integers(0, 5),
    st.integers(1, 3),
    st.booleans(),
)


def _as_docs(raw: list[list[str]]) -> list[tuple[str, list[tuple[str, str]]]]:
    return [(f"doc{d}", [(f"d{d}p{p}", text) for p, text in enumerate(texts)]) for d, texts in enumerate(raw)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=documents_strategy, config=configs_strategy)
def test_fast_miner_equals_naive_reference(raw, config):
    docs = _as_docs(raw)
    fast = mine_documents(docs, config)
    assert [d.document for d in fast] == [key for key, _ in docs]
    for result, (_, passages) in zip(fast, docs):
        assert result.clusters == naive_mine_document(passages, config)


# Three tokens and long passages: highly repetitive text ("a b c a b ..."), where one longer span can
# cover two occurrences of a shorter one at different offsets.
repetitive_strategy = st.lists(
    st.lists(st.lists(st.sampled_from(["a", "b", "Cc"]), min_size=0, max_size=25).map(_text), min_size=1, max_size=5),
    min_size=1,
    max_size=3,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=repetitive_strategy, config=configs_strategy)
def test_fast_miner_equals_naive_reference_on_repetitive_text(raw, config):
    config = SpanMiningConfig(
        min_span_length=config.min_span_length,
        max_span_length=config.max_span_length,
        min_span_passages=config.min_span_passages,
        maximal_only=config.maximal_only,
        stopwords=frozenset({"a"}),
    )
    docs = _as_docs(raw)
    for result, (_, passages) in zip(mine_documents(docs, config), docs):
        assert result.clusters == naive_mine_document(passages, config)


@settings(max_examples=60, deadline=None)
@given(raw=documents_strategy)
def test_batching_does_not_change_results(raw):
    docs = _as_docs(raw)
    config = SpanMiningConfig(min_span_passages=2)
    together = mine_documents(docs, config)
    alone = [mine_documents([doc], config)[0] for doc in docs]
    assert together == alone


def test_maximal_spans_on_a_known_document():
    docs = [
        (
            "NYC",
            [
                ("p1", "New York City is big. The river of New York City."),
                ("p2", "I love New York City and its river."),
                ("p3", "New York state, New York."),
            ],
        )
    ]
    clusters = mine_documents(docs, SpanMiningConfig())[0].clusters
    by_span = {c.span: c.occurrences for c in clusters}
    # "new york city" covers the "new york"s of p1/p2 but not those of p3, so both stay; "york city" is
    # always inside "new york city" and goes.
    assert by_span["new york city"] == (("p1", 0, 3), ("p1", 9, 12), ("p2", 2, 5))
    assert by_span["new york"] == (
        ("p1", 0, 2), ("p1", 9, 11), ("p2", 2, 4), ("p3", 0, 2), ("p3", 4, 6),
    )
    assert "york city" not in by_span
    assert "river" not in by_span  # 1-token spans are off by default
    all_spans = {c.span for c in mine_documents(docs, SpanMiningConfig(maximal_only=False))[0].clusters}
    assert {"york city", "new york city", "new york"} <= all_spans


def test_stopword_and_token_rules():
    passages = [
        ("a", "the end of the world, in 1999 Paris x2 b and the end"),
        ("b", "in 1999 Paris x2 b the end of the world and"),
    ]
    spans = {c.span for c in mine_documents([("d", passages)], SpanMiningConfig(min_span_length=1))[0].clusters}
    assert "end of the world" in spans  # stopwords inside are fine
    assert "the end of the world" not in spans  # starts with a stopword
    assert "1999 paris" in spans
    assert not any("x2" in s for s in spans)  # mixed letters/digits never belong to a span
    single = {c.span for c in mine_documents([("d", passages)], SpanMiningConfig(1, 1))[0].clusters}
    assert single == {"1999", "paris"}  # capitalised or 4-digit; "end"/"world" are lowercase


def test_tokenizer_is_the_specified_regex():
    assert tokenize("Don't stop_me (now), 3.14!") == ["Don", "'", "t", "stop", "_", "me", "(", "now", ")", ",", "3", ".", "14", "!"]


def test_stopword_list_is_nltk_english():
    assert len(NLTK_ENGLISH_STOPWORDS) == 179
    assert {"the", "mightn't", "ourselves", "ll"} <= NLTK_ENGLISH_STOPWORDS


def _passages(spec: list[tuple[str, int]]) -> list[Passage]:
    out, counter = [], 0
    for title, n in spec:
        for _ in range(n):
            counter += 1
            out.append(Passage(id=f"p{counter}", text=f"text {counter}", title=title))
    return out


def test_documents_group_consecutive_titles_and_a_reappearing_title_is_a_new_document():
    passages = _passages([("A", 3), ("B", 2), ("A", 1)])
    docs = list(iter_documents(passages, SpanMiningConfig()))
    assert [(key, [p.id for p in ps]) for key, ps in docs] == [
        ("A", ["p1", "p2", "p3"]), ("B", ["p4", "p5"]), ("A", ["p6"]),
    ]
    sectioned = _passages([("Doc — s1", 2), ("Doc — s2", 2), ("Other", 1)])
    keys = [key for key, _ in iter_documents(sectioned, SpanMiningConfig(title_separator=" — "))]
    assert keys == ["Doc", "Other"]


def test_select_passages_drops_last_then_requires_minimum():
    four = _passages([("A", 4)])
    assert select_passages(four, SpanMiningConfig()) == four
    assert [p.id for p in select_passages(four, SpanMiningConfig(drop_last_passage=True))] == ["p1", "p2", "p3"]
    assert select_passages(four[:3], SpanMiningConfig(drop_last_passage=True)) is None
    assert select_passages(four[:2], SpanMiningConfig()) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_span_length": 0},
        {"min_span_length": 3, "max_span_length": 2},
        {"max_span_length": 40},
        {"min_document_passages": 0},
        {"min_span_passages": 0},
        {"title_separator": ""},
    ],
)
def test_bad_config_raises(kwargs):
    with pytest.raises(ValueError):
        SpanMiningConfig(**kwargs)


def test_hash_collisions_are_detected(monkeypatch):
    # With a zero rolling multiplier every n-gram hash depends only on its last token, so distinct spans
    # collide; the verification must notice instead of emitting a wrong cluster.
    texts = ["red apple pie", "green apple pie", "red apple pie", "green apple pie"]
    docs = [("d", [(str(i), text) for i, text in enumerate(texts)])]
    monkeypatch.setattr(spans_module, "_ROLL", np.uint64(0))
    with pytest.raises(spans_module._HashCollision):
        spans_module._mine_batch(docs, SpanMiningConfig(), seed=0)


# ---------------------------------------------------------------------------------------------------
# Files: streaming, shards, resume, CLI
# ---------------------------------------------------------------------------------------------------

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
        mine_spans_to_file(corpus, out, batch_passages=5, progress=False, checkpoint_seconds=0, read_passages=crashing_reader)
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


def test_json_round_trip():
    docs = [("Dö\"c", [("a\tb", "Zürich New York é"), ("c", "Zürich New York"), ("d", "x")])]
    result = mine_documents(docs, SpanMiningConfig())[0]
    assert result.clusters
    line = json.dumps(result.to_json(), ensure_ascii=False)
    assert DocumentSpans.from_json(json.loads(line)) == result


def test_empty_and_odd_texts():
    docs = [("d", [("a", ""), ("b", "\x00 New York \x00"), ("c", "New York")])]
    result = mine_documents(docs, SpanMiningConfig())
    assert [c.span for c in result[0].clusters] == ["new york"]
    assert result[0].clusters[0].occurrences == (("b", 1, 3), ("c", 0, 2))
    assert mine_documents([], SpanMiningConfig()) == []


def test_cli_mines_a_corpus(tmp_path, capsys):
    from spart.cli import main

    corpus = tmp_path / "corpus.tsv"
    _write_corpus(corpus, n_docs=5)
    out = tmp_path / "cli.jsonl.gz"
    assert main(["mine-spans", str(corpus), "-o", str(out), "--workers", "1", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["documents"] == 5
    assert all(isinstance(DocumentSpans.from_json(d), DocumentSpans) for d in _lines(out))
    assert main(["mine-spans", str(corpus), "-o", str(out), "--shard", "5/2"]) == 2


@pytest.mark.shared_data
def test_shared_corpus_agrees_with_naive_reference(shared_data):
    from spart.data import read_passages

    config = SpanMiningConfig(title_separator=" — ")
    docs = []
    for key, passages in iter_documents(read_passages(shared_data / "pydocs" / "corpus.jsonl"), config):
        selected = select_passages(passages, config)
        if selected is not None:
            docs.append((key, [(p.id, p.text) for p in selected]))
        if len(docs) == 12:
            break
    fast = mine_documents(docs, config)
    assert sum(len(d.clusters) for d in fast) > 50
    for result, (_, passages) in zip(fast, docs):
        assert result.clusters == naive_mine_document(passages, config)
