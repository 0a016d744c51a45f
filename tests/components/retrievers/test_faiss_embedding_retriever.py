"""FaissEmbeddingRetriever."""

from __future__ import annotations

import numpy as np
import pytest
from haystack import Document
from haystack.document_stores.types import FilterPolicy

from spart.components.document_stores import FaissDocumentStore
from spart.components.retrievers import FaissEmbeddingRetriever

TYPE = "spart.components.retrievers.faiss_embedding_retriever.FaissEmbeddingRetriever"


@pytest.fixture
def store() -> FaissDocumentStore:
    store = FaissDocumentStore(embedding_dim=3)
    store.write_documents(
        [
            Document(id="x", content="east", embedding=[1.0, 0.0, 0.0], meta={"lang": "en"}),
            Document(id="y", content="north", embedding=[0.0, 1.0, 0.0], meta={"lang": "de"}),
            Document(id="xy", content="north-east", embedding=[0.6, 0.6, 0.0], meta={"lang": "en"}),
            Document(id="none", content="no vector"),
        ]
    )
    return store


def test_init(store):
    retriever = FaissEmbeddingRetriever(store)
    assert retriever.top_k == 10 and retriever.filters is None and retriever.filter_policy == FilterPolicy.REPLACE
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        FaissEmbeddingRetriever(store, top_k=0)
    with pytest.raises(TypeError, match="must be a FaissDocumentStore"):
        FaissEmbeddingRetriever(object())


def test_to_dict(store):
    data = FaissEmbeddingRetriever(
        store, filters={"field": "meta.lang", "operator": "==", "value": "en"}, top_k=3
    ).to_dict()
    assert data["type"] == TYPE
    params = data["init_parameters"]
    assert params["top_k"] == 3 and params["filter_policy"] == "replace" and params["return_embedding"] is False
    assert params["document_store"] == store.to_dict()


def test_from_dict(store, tmp_path):
    store.save(tmp_path / "s")
    data = FaissEmbeddingRetriever(store, top_k=2, filter_policy=FilterPolicy.MERGE).to_dict()
    retriever = FaissEmbeddingRetriever.from_dict(data)
    assert retriever.top_k == 2 and retriever.filter_policy == FilterPolicy.MERGE
    assert retriever.document_store.count_documents() == 4  # re-opened from the saved directory
    bad = {**data, "init_parameters": {**data["init_parameters"], "document_store": {"type": "os.system"}}}
    with pytest.raises(TypeError, match="needs a FaissDocumentStore"):
        FaissEmbeddingRetriever.from_dict(bad)


def test_run_scores_are_inner_products(store):
    docs = FaissEmbeddingRetriever(store, top_k=3).run(query_embedding=[1.0, 0.5, 0.0])["documents"]
    assert [d.id for d in docs] == ["x", "xy", "y"]  # "none" has no embedding
    np.testing.assert_allclose([d.score for d in docs], [1.0, 0.6 + 0.3, 0.5], rtol=1e-6)
    assert all(d.embedding is None for d in docs)


def test_run_top_k_filters_and_errors(store):
    retriever = FaissEmbeddingRetriever(store, filters={"field": "meta.lang", "operator": "==", "value": "en"})
    assert [d.id for d in retriever.run(query_embedding=[0.0, 1.0, 0.0])["documents"]] == ["xy", "x"]
    runtime = {"field": "meta.lang", "operator": "==", "value": "de"}
    assert [d.id for d in retriever.run(query_embedding=[0.0, 1.0, 0.0], filters=runtime)["documents"]] == ["y"]
    assert len(retriever.run(query_embedding=[0.0, 1.0, 0.0], top_k=1)["documents"]) == 1
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        retriever.run(query_embedding=[0.0, 1.0, 0.0], top_k=0)
    with pytest.raises(ValueError, match="embedding_dim is 3"):
        retriever.run(query_embedding=[0.0, 1.0])
    docs = FaissEmbeddingRetriever(store, return_embedding=True).run(query_embedding=[1.0, 0.0, 0.0])["documents"]
    assert docs[0].embedding == [1.0, 0.0, 0.0]
