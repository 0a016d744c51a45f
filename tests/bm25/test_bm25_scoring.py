"""BM25 variants: parity with rank-bm25 and bm25s, hand computations, search semantics."""

from __future__ import annotations

import csv
import math

import bm25s
import numpy as np
import pytest
import rank_bm25
from hypothesis import given, settings
from hypothesis import strategies as st

from spart.bm25 import BM25Index, Tokenizer, get_variant

TINY = [["cat", "sat", "mat"], ["cat", "cat", "dog"], ["dog", "ran"], ["cat", "hat", "bat", "rat", "cat", "sat"]]
N = len(TINY)
AVG = sum(map(len, TINY)) / N  # 15 / 4


def _df(term):
    return sum(term in d for d in TINY)


def _hand_lucene(query, doc, k1=1.5, b=0.75):
    total = 0.0
    for t in query:
        tf = doc.count(t)
        if tf == 0:
            continue
        idf = math.log(1 + (N - _df(t) + 0.5) / (_df(t) + 0.5))
        total += idf * tf / (tf + k1 * (1 - b + b * len(doc) / AVG))
    return total


def _hand_bm25l(query, doc, k1=1.5, b=0.75, delta=0.5):
    total = 0.0
    for t in query:
        if _df(t) == 0:
            continue
        c = doc.count(t) / (1 - b + b * len(doc) / AVG)
        total += math.log((N + 1) / (_df(t) + 0.5)) * (k1 + 1) * (c + delta) / (k1 + c + delta)
    return total


def _hand_bm25plus(query, doc, k1=1.5, b=0.75, delta=0.5):
    total = 0.0
    for t in query:
        if _df(t) == 0:
            continue
        tf = doc.count(t)
        tfc = (k1 + 1) * tf / (k1 * (1 - b + b * len(doc) / AVG) + tf) + delta
        total += math.log((N + 1) / _df(t)) * tfc
    return total


@pytest.mark.parametrize("method,hand", [("lucene", _hand_lucene), ("bm25l", _hand_bm25l), ("bm25+", _hand_bm25plus)])
@pytest.mark.parametrize("query", [["cat"], ["dog", "sat", "unknown"], ["cat", "cat", "rat"]])
def test_variants_match_hand_computation(method, hand, query):
    index = BM25Index(method=method)
    index.build(TINY)
    want = [hand(query, doc) for doc in TINY]
    np.testing.assert_allclose(index.get_scores(query), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["robertson", "lucene", "atire", "bm25l", "bm25+"])
def test_variants_match_bm25s_native(method):
    index = BM25Index(method=method, k1=1.2, b=0.6, delta=0.7)
    index.build(TINY)
    native = bm25s.BM25(method=method, k1=1.2, b=0.6, delta=0.7)
    native.index(TINY, show_progress=False)
    for query in (["cat"], ["dog", "hat", "cat"]):
        np.testing.assert_allclose(index.get_scores(query), native.get_scores(query), rtol=1e-6, atol=1e-6)


def test_bm25plus_matches_rank_bm25():
    index = BM25Index(method="bm25+", delta=1.0)  # rank-bm25's BM25Plus default delta
    index.build(TINY)
    oracle = rank_bm25.BM25Plus(TINY)
    for query in (["cat"], ["dog", "rat", "cat", "zzz"]):
        np.testing.assert_allclose(index.get_scores(query), oracle.get_scores(query), rtol=0, atol=1e-9)


words = st.sampled_from([f"w{i}" for i in range(12)])


@settings(max_examples=60, deadline=None)
@given(
    corpus=st.lists(st.lists(words, min_size=1, max_size=12), min_size=1, max_size=25),
    query=st.lists(words, min_size=1, max_size=5),
)
def test_okapi_matches_rank_bm25_on_random_corpora(corpus, query):
    # Small vocabularies make most terms appear in > half the documents: rank-bm25's epsilon floor is hit.
    index = BM25Index(method="okapi")
    index.build(corpus)
    oracle = rank_bm25.BM25Okapi(corpus)
    np.testing.assert_allclose(index.get_scores(query), oracle.get_scores(query), rtol=0, atol=1e-6)


def test_okapi_epsilon_floor_is_exercised():
    corpus = [["a", "b"], ["a", "c"], ["a", "d"]]  # "a" in every document: negative raw idf
    raw = math.log(3 - 3 + 0.5) - math.log(3 + 0.5)
    assert raw < 0
    idf = get_variant("okapi").idf(np.array([3, 1, 1, 1]), 3)
    mean = (raw + 3 * (math.log(2.5) - math.log(1.5))) / 4
    assert idf[0] == pytest.approx(0.25 * mean)
    index = BM25Index(method="okapi")
    index.build(corpus)
    np.testing.assert_allclose(index.get_scores(["a"]), rank_bm25.BM25Okapi(corpus).get_scores(["a"]), atol=1e-12)


@pytest.mark.shared_data
def test_okapi_matches_rank_bm25_on_wiki_passages(shared_data):
    tok = Tokenizer()
    with open(shared_data / "wiki" / "passages.tsv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))[1:1501]
    corpus = [tok(f"{title} {text}") for _, text, title in rows]
    with open(shared_data / "wiki" / "trivia-test.csv", encoding="utf-8") as fh:
        queries = [tok(line.split("\t")[0]) for line in fh][:20]
    index = BM25Index(method="okapi")
    index.build(corpus)
    oracle = rank_bm25.BM25Okapi(corpus)
    for q in queries:
        np.testing.assert_allclose(index.get_scores(q), oracle.get_scores(q), rtol=0, atol=1e-6)


def test_search_returns_only_matching_documents_sorted_with_ties_by_position():
    index = BM25Index(method="lucene")
    index.build([["x", "y"], ["z"], ["x", "y"], ["y", "q", "q"]])
    scores, pos = index.search(["x"], k=10)
    assert pos.tolist() == [0, 2]  # doc 1 and 3 share no token with the query: not returned
    assert scores[0] == scores[1] > 0
    scores, pos = index.search(["x", "y"], k=2)
    assert pos.tolist() == [0, 2]
    _, pos = index.search(["x", "y"], k=1)
    assert pos.tolist() == [0]
    _, pos = index.search(["x", "y"], k=10, allowed=np.array([False, True, True, True]))
    assert pos.tolist() == [2, 3]
    assert index.search(["nothing"], k=3)[1].size == 0
    assert index.search([], k=3)[1].size == 0


def test_search_topk_matches_full_sort():
    rng = np.random.default_rng(0)
    corpus = [[f"t{v}" for v in rng.integers(0, 40, size=rng.integers(1, 30))] for _ in range(500)]
    index = BM25Index(method="okapi")
    index.build(corpus)
    query = ["t1", "t5", "t7", "t7"]
    full = index.get_scores(query)
    scores, pos = index.search(query, k=25)
    want = np.lexsort((np.arange(len(full)), -full))[:25]
    np.testing.assert_array_equal(pos, want)
    np.testing.assert_allclose(scores, full[want])


def test_bad_parameters():
    with pytest.raises(ValueError, match="unknown BM25 method 'bm26'"):
        BM25Index(method="bm26")
    with pytest.raises(ValueError, match="0 <= b <= 1"):
        BM25Index(b=2.0)
    index = BM25Index()
    with pytest.raises(ValueError, match="call build"):
        index.search(["a"], 1)
    index.build([["a"]])
    with pytest.raises(ValueError, match="k must be > 0"):
        index.search(["a"], 0)


def test_rebuild_after_vocabulary_terms_lose_all_documents():
    vocab = {"a": 0, "b": 1, "gone": 2}
    index = BM25Index(method="okapi")
    index.build_from_ids([np.array([0, 1]), np.array([0])], vocab)
    fresh = BM25Index(method="okapi")
    fresh.build([["a", "b"], ["a"]])
    np.testing.assert_allclose(index.get_scores(["a", "b", "gone"]), fresh.get_scores(["a", "b"]))
