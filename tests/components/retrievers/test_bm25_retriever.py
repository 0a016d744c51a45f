"""BM25Retriever."""

from __future__ import annotations

import pytest
from haystack import Document
from haystack.document_stores.types import FilterPolicy

from spart.bm25 import Tokenizer
from spart.components.document_stores import FaissDocumentStore
from spart.components.retrievers import BM25Retriever

TYPE = "spart.components.retrievers.bm25_retriever.BM25Retriever"
TEXTS = {
    "1": ("Paris is the capital of France", "geo"),
    "2": ("Berlin is the capital of Germany", "geo"),
    "3": ("The capital gains tax in France", "money"),
    "4": ("Cats sleep all day", "pets"),
}


@pytest.fixture
def store() -> FaissDocumentStore:
    store = FaissDocumentStore(embedding_dim=2, bm25_method="okapi")
    store.write_documents([Document(id=i, content=t, meta={"topic": c}) for i, (t, c) in TEXTS.items()])
    return store


def test_init(store):
    retriever = BM25Retriever(store)
    assert retriever.top_k == 10 and retriever.filters is None and retriever.filter_policy == FilterPolicy.REPLACE
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        BM25Retriever(store, top_k=-3)
    with pytest.raises(TypeError, match="must be a FaissDocumentStore"):
        BM25Retriever("not a store")


def test_to_dict(store):
    data = BM25Retriever(store, top_k=4, filter_policy=FilterPolicy.MERGE).to_dict()
    assert data["type"] == TYPE
    assert data["init_parameters"]["top_k"] == 4 and data["init_parameters"]["filter_policy"] == "merge"
    assert data["init_parameters"]["document_store"]["init_parameters"]["bm25_method"] == "okapi"


def test_from_dict(store):
    retriever = BM25Retriever.from_dict(BM25Retriever(store, top_k=4).to_dict())
    assert retriever.top_k == 4 and retriever.document_store.bm25_method == "okapi"
    assert retriever.document_store.count_documents() == 0  # an in-memory store is re-created empty


def test_run_ranks_by_bm25(store):
    rank_bm25 = pytest.importorskip("rank_bm25")
    docs = BM25Retriever(store).run(query="capital of France")["documents"]
    tok = Tokenizer()
    oracle = rank_bm25.BM25Okapi([tok(t) for t, _ in TEXTS.values()]).get_scores(tok("capital of France"))
    want = sorted((i for i in TEXTS if oracle[int(i) - 1] != 0), key=lambda i: -oracle[int(i) - 1])
    assert [d.id for d in docs] == want
    assert [d.score for d in docs] == pytest.approx([oracle[int(i) - 1] for i in want], abs=1e-6)
    assert "4" not in [d.id for d in docs]


def test_run_top_k_filters_and_errors(store):
    retriever = BM25Retriever(store, filters={"field": "meta.topic", "operator": "==", "value": "geo"})
    assert {d.id for d in retriever.run(query="capital France")["documents"]} == {"1", "2"}
    assert [d.id for d in retriever.run(query="capital France", top_k=1)["documents"]] == ["1"]
    money = {"field": "meta.topic", "operator": "==", "value": "money"}
    assert [d.id for d in retriever.run(query="capital France", filters=money)["documents"]] == ["3"]
    assert retriever.run(query="the of is")["documents"] == []  # only stop words
    with pytest.raises(ValueError, match="non-empty string"):
        retriever.run(query="")
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        retriever.run(query="capital", top_k=0)
