"""YAML round trip of a pipeline holding both retrievers, and the deserialisation allowlist opt-in."""

from __future__ import annotations

import pytest
from haystack import Document, Pipeline
from haystack.core.errors import DeserializationError

from spart.components.document_stores import FaissDocumentStore
from spart.components.retrievers import BM25Retriever, FaissEmbeddingRetriever


def _pipeline(path) -> Pipeline:
    store = FaissDocumentStore(path=str(path), embedding_dim=2)
    store.write_documents(
        [
            Document(id="a", content="apples and pears", embedding=[1.0, 0.0]),
            Document(id="b", content="pears only", embedding=[0.0, 1.0]),
        ]
    )
    store.save()
    pipe = Pipeline()
    pipe.add_component("dense", FaissEmbeddingRetriever(store, top_k=1))
    pipe.add_component("sparse", BM25Retriever(store, top_k=2))
    return pipe


def test_yaml_round_trip_with_allowed_modules(tmp_path):
    pipe = _pipeline(tmp_path / "store")
    text = pipe.dumps()
    assert "spart.components.retrievers.bm25_retriever.BM25Retriever" in text
    with pytest.raises(DeserializationError, match="allowlist"):
        Pipeline.loads(text)  # spart is not trusted by default
    loaded = Pipeline.loads(text, allowed_modules=["spart"])
    assert loaded.dumps() == text
    out = loaded.run({"dense": {"query_embedding": [0.0, 1.0]}, "sparse": {"query": "apples"}})
    assert [d.id for d in out["dense"]["documents"]] == ["b"]
    assert [d.id for d in out["sparse"]["documents"]] == ["a"]


def test_yaml_round_trip_with_environment_allowlist(tmp_path, monkeypatch):
    text = _pipeline(tmp_path / "store").dumps()
    monkeypatch.setenv("HAYSTACK_DESERIALIZATION_ALLOWLIST", "spart.*")
    assert Pipeline.loads(text).dumps() == text


def test_yaml_round_trip_with_process_wide_allowlist(tmp_path, monkeypatch):
    from haystack.core import serialization_security
    from haystack.core.serialization import allow_deserialization_module

    text = _pipeline(tmp_path / "store").dumps()
    # the process-wide list is global state: give this test a private one that pytest restores afterwards
    monkeypatch.setattr(serialization_security, "_extra_allowed_modules", [])
    allow_deserialization_module("spart")
    assert Pipeline.loads(text).dumps() == text


def test_retrievers_loaded_from_one_yaml_share_one_store(tmp_path):
    text = _pipeline(tmp_path / "store").dumps()
    first = Pipeline.loads(text, allowed_modules=["spart"])
    store = first.get_component("dense").document_store
    assert first.get_component("sparse").document_store is store
    assert Pipeline.loads(text, allowed_modules=["spart"]).get_component("sparse").document_store is store
    # every write is durable when it returns: a newly loaded pipeline shares the open store and sees it,
    # and so does a separate instance (as another process would open it), without any save()
    store.write_documents([Document(id="c", content="cherries", embedding=[0.5, 0.5])])
    fresh = Pipeline.loads(text, allowed_modules=["spart"]).get_component("dense").document_store
    assert fresh is store and fresh.count_documents() == 3
    other = FaissDocumentStore(path=store.path, embedding_dim=2)
    assert other is not store and other.count_documents() == 3
    assert [d.id for d in other.bm25_retrieval("cherries", top_k=1)] == ["c"]
