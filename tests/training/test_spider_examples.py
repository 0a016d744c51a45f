"""SPIDER training examples: determinism, the query transformation, negatives, lookups."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import pytest

from spart.data import Passage
from spart.training.spans import SpanMiningConfig, mine_spans, mine_spans_to_file, tokenize
from spart.training.spider_examples import (
    InMemoryPassageLookup,
    SpiderExamples,
    SqlitePassageLookup,
    open_spider_examples,
)

FILLER = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november oscar papa "
    "quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
).split()


def _corpus(n_docs: int = 6, per_doc: int = 5, seed: int = 0) -> list[Passage]:
    """Documents whose passages share one distinctive span each, embedded once in long filler text."""
    rng = np.random.default_rng(seed)
    passages = []
    for d in range(n_docs):
        span = f"Grand Canal {d} Bridge"
        for p in range(per_doc):
            words = [FILLER[i] + str(d) for i in rng.integers(0, len(FILLER), size=60)]
            if p < per_doc - 1:  # the last passage of each document lacks the span: a negative exists
                at = int(rng.integers(0, 60))
                words[at:at] = span.split()
            passages.append(Passage(id=f"d{d}p{p}", text=" ".join(words) + ".", title=f"Doc {d}"))
    return passages


def _dataset(passages: list[Passage], **kwargs) -> SpiderExamples:
    documents = list(mine_spans(passages, SpanMiningConfig()))
    lookup = InMemoryPassageLookup({p.id: p for p in passages})
    return SpiderExamples(documents, lookup, **kwargs)


def _lowered(text: str) -> list[str]:
    return [t.lower() for t in tokenize(text)]


def _contains(tokens: list[str], span: list[str]) -> bool:
    return any(tokens[i : i + len(span)] == span for i in range(len(tokens) - len(span) + 1))


def test_examples_are_deterministic_per_seed_epoch_and_index():
    passages = _corpus()
    a, b = _dataset(passages, seed=3), _dataset(passages, seed=3)
    assert len(a) == 6
    assert [a[i] for i in range(len(a))] == [b[i] for i in range(len(b))]
    a.set_epoch(1)
    epoch1 = [a[i] for i in range(len(a))]
    assert epoch1 != [b[i] for i in range(len(b))]
    assert epoch1 == [b.example(i, 1) for i in range(len(b))]  # any example can be regenerated alone
    assert _dataset(passages, seed=4).example(0, 0) != b.example(0, 0) or _dataset(passages, seed=4).example(
        1, 0
    ) != b.example(1, 0)
    with pytest.raises(IndexError):
        a[len(a)]


def test_query_positive_and_negative_follow_the_recipe():
    passages = _corpus()
    by_id = {p.id: p for p in passages}
    dataset = _dataset(passages, seed=0)
    removed = kept = 0
    lengths = set()
    for epoch in range(40):
        for i in range(len(dataset)):
            ex = dataset.example(i, epoch)
            span = ex["span"].split()
            source = _lowered(by_id[ex["query_passage_id"]].text)
            query = _lowered(ex["query"])
            assert ex["positive"].id != ex["query_passage_id"]
            assert _contains(source, span) and _contains(_lowered(ex["positive"].text), span)
            assert ex["negative"] is not None and not _contains(_lowered(ex["negative"].text), span)
            assert ex["negative"].title == ex["positive"].title == by_id[ex["query_passage_id"]].title
            assert 5 <= len(query) <= 30  # passages are long, so the window always has L tokens
            lengths.add(len(query))
            if ex["span_removed"]:
                # the query is a window of the passage with the chosen occurrence cut out
                removed += 1
                j = next(j for j in range(len(source)) if source[j : j + len(span)] == span)
                cut = source[:j] + source[j + len(span) :]
                assert any(cut[k : k + len(query)] == query for k in range(len(cut)))
                assert not _contains(query, span)
            else:
                # kept: one contiguous window of the passage that overlaps or touches the span
                kept += 1
                j = next(j for j in range(len(source)) if source[j : j + len(span)] == span)
                starts = [k for k in range(len(source)) if source[k : k + len(query)] == query]
                assert any(j - len(query) <= k <= j + len(span) for k in starts)
    total = removed + kept
    assert 0.4 * total < removed < 0.6 * total
    assert min(lengths) <= 7 and max(lengths) >= 28


def test_remove_probability_extremes():
    passages = _corpus()
    keep_all = _dataset(passages, remove_span_prob=0.0, min_window_tokens=30, max_window_tokens=30)
    drop_all = _dataset(passages, remove_span_prob=1.0)
    for epoch in range(10):
        for i in range(len(keep_all)):
            ex = keep_all.example(i, epoch)
            assert len(tokenize(ex["query"])) == 30
            ex = drop_all.example(i, epoch)
            # each query passage contains the span once, so removing it leaves no occurrence
            assert not _contains(_lowered(ex["query"]), ex["span"].split())


def test_negative_is_none_without_candidates_and_require_negative_drops():
    passages = [
        Passage("a", "the Blue Whale swims near Iceland today", "T"),
        Passage("b", "a Blue Whale swims far away", "T"),
        Passage("c", "one Blue Whale was seen", "T"),
    ]
    dataset = _dataset(passages)
    assert [dataset[i]["span"] for i in range(len(dataset))] == ["blue whale", "blue whale swims"]
    by_span = {dataset[i]["span"]: dataset[i] for i in range(len(dataset))}
    assert by_span["blue whale"]["negative"] is None  # every passage has "blue whale"
    assert by_span["blue whale swims"]["negative"].id == "c"
    strict = _dataset(passages, require_negative=True)
    assert len(strict) == 1 and strict.skipped_clusters == 1


def test_short_passages_shrink_the_window():
    passages = [Passage("a", "Blue Whale", "T"), Passage("b", "Blue Whale", "T"), Passage("c", "x y", "T")]
    dataset = _dataset(passages, remove_span_prob=1.0)
    ex = dataset[0]
    assert ex["query"] == "Blue Whale"  # the passage is the span: it is kept rather than emptied


def test_mismatched_corpus_is_reported():
    passages = _corpus(n_docs=1)
    documents = list(mine_spans(passages, SpanMiningConfig()))
    other = {p.id: Passage(p.id, "completely different text here", p.title) for p in passages}
    dataset = SpiderExamples(documents, InMemoryPassageLookup(other))
    with pytest.raises(ValueError, match="another corpus"):
        dataset[0]
    with pytest.raises(KeyError):
        SpiderExamples(documents, InMemoryPassageLookup({}))[0]


@pytest.mark.parametrize(
    "kwargs", [{"remove_span_prob": 1.5}, {"min_window_tokens": 0}, {"min_window_tokens": 9, "max_window_tokens": 8}]
)
def test_bad_options(kwargs):
    with pytest.raises(ValueError):
        _dataset(_corpus(n_docs=1), **kwargs)


def _write_tsv(path: Path, passages: list[Passage]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["id", "text", "title"])
        for p in passages:
            writer.writerow([p.id, p.text, p.title])


def test_open_from_files_with_memory_and_sqlite_lookups(tmp_path):
    passages = _corpus()
    corpus = tmp_path / "corpus.tsv"
    _write_tsv(corpus, passages)
    spans = tmp_path / "spans.jsonl.gz"
    mine_spans_to_file(corpus, spans, progress=False)
    memory = open_spider_examples(corpus, spans, seed=5)
    sqlite = open_spider_examples(corpus, [spans], seed=5, lookup="sqlite", remove_span_prob=0.5)
    assert (tmp_path / "corpus.passages.sqlite").is_file()
    assert [memory[i] for i in range(len(memory))] == [sqlite[i] for i in range(len(sqlite))]
    # DataLoader workers pickle the dataset; the SQLite connection is reopened in the new process.
    clone = pickle.loads(pickle.dumps(sqlite))
    assert clone[2] == sqlite[2]
    with pytest.raises(FileNotFoundError):
        open_spider_examples(tmp_path / "missing.tsv", spans)
    with pytest.raises(ValueError, match="lookup"):
        open_spider_examples(corpus, spans, lookup="redis")
    with pytest.raises(FileNotFoundError):
        SqlitePassageLookup(tmp_path / "none.sqlite")


def test_examples_feed_the_contrastive_trainer_batch():
    from spart.training.contrastive import Batch

    dataset = _dataset(_corpus())
    batch = Batch.from_examples([dataset[i] for i in range(4)])
    assert len(batch.queries) == 4 and len(batch.passages) == 8  # 4 positives + 4 negatives


@pytest.mark.shared_data
def test_shared_wiki_examples(shared_data, tmp_path):
    corpus = shared_data / "wiki" / "passages.tsv"
    spans = tmp_path / "wiki.jsonl.gz"
    stats = mine_spans_to_file(corpus, spans, workers=1, progress=False)
    dataset = open_spider_examples(corpus, spans, seed=0)
    assert len(dataset) == stats.clusters > 1000
    for i in range(0, len(dataset), 97):
        ex = dataset[i]
        assert ex["query"].strip() and ex["positive"].text and ex["positive"].title
        assert 1 <= len(tokenize(ex["query"])) <= 30


def test_span_file_without_clusters_is_refused(tmp_path):
    passages = [Passage(f"p{i}", f"alpha{i} bravo{i} charlie{i}", "T") for i in range(4)]
    corpus = tmp_path / "corpus.tsv"
    _write_tsv(corpus, passages)
    spans = tmp_path / "spans.jsonl.gz"
    stats = mine_spans_to_file(corpus, spans, progress=False)
    assert stats.eligible_documents == 1 and stats.clusters == 0
    with pytest.raises(ValueError, match="no usable"):
        open_spider_examples(corpus, spans)
