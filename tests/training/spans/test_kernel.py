"""The vectorised kernel against the naive reference (property tests), batching, the sort fallback, JSON lines."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spart.training.spans import (
    SpanMiningConfig,
    iter_documents,
    kernel,
    mine_documents,
    select_passages,
)
from spart.training.spans.reference import naive_mine_document

# A tiny vocabulary so that spans recur often: content words, stopwords, capitalised words, numbers,
# punctuation and tokens that may not be part of a span (mixed letters/digits, underscores).
VOCAB = [
    "paris",
    "france",
    "river",
    "Seine",
    "New",
    "York",
    "city",
    "the",
    "of",
    "and",
    "in",
    "a",
    "1889",
    "42",
    "tower",
    ",",
    ".",
    "(",
    ")",
    "x2",
    "snake_case",
    "don't",
    "Über",
    "über",
    "İstanbul",
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


@settings(max_examples=60, deadline=None)
@given(raw=documents_strategy, config=configs_strategy)
def test_grouping_without_packed_keys_gives_the_same_clusters(raw, config):
    # Keys too large to share an int64 with the row number are grouped by a stable argsort instead.
    docs = _as_docs(raw)
    packed = mine_documents(docs, config)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernel, "_PACK_BITS", 0)
        assert mine_documents(docs, config) == packed
    for result, (_, passages) in zip(packed, docs):
        assert result.clusters == naive_mine_document(passages, config)


@settings(max_examples=60, deadline=None)
@given(raw=documents_strategy, names=st.lists(st.text(max_size=4), min_size=2, max_size=2))
def test_json_lines_are_the_documents_json(raw, names):
    # Keys and ids that JSON must escape: quotes, backslashes, control characters, non-ASCII.
    docs = [
        (f'{names[0]}"doc\\{d}', [(f"{names[1]}\t{d}.{p}", text) for p, text in enumerate(texts)])
        for d, texts in enumerate(raw)
    ]
    config = SpanMiningConfig(min_span_passages=2, min_span_length=1)
    documents = mine_documents(docs, config)
    encoded = kernel.mine_documents_to_json(docs, config)
    assert encoded.lines == [json.dumps(d.to_json(), ensure_ascii=False) for d in documents if d.clusters]
    assert encoded.clusters == sum(len(d.clusters) for d in documents)
    assert encoded.occurrences == sum(len(c.occurrences) for d in documents for c in d.clusters)


def test_empty_and_odd_texts():
    docs = [("d", [("a", ""), ("b", "\x00 New York \x00"), ("c", "New York")])]
    result = mine_documents(docs, SpanMiningConfig())
    assert [c.span for c in result[0].clusters] == ["new york"]
    assert result[0].clusters[0].occurrences == (("b", 1, 3), ("c", 0, 2))
    assert mine_documents([], SpanMiningConfig()) == []


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
