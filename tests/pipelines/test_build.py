"""build_store: streaming build into an atomic store directory, with a build record."""

from __future__ import annotations

import json

import numpy as np
import pytest
from haystack import Document

from spart.components.document_stores import FaissDocumentStore
from spart.components.embedders import ARTDocumentEmbedder, SpiderDocumentEmbedder
from spart.pipelines import build_store, read_build_info
from spart.pipelines.build import BUILD_INFO_FILE, text_embedder_spec


def _embedder(tiny_bert_dir, cls=SpiderDocumentEmbedder):
    return cls(model=str(tiny_bert_dir), device="cpu", precision="fp32", progress_bar=False)


def test_store_holds_every_document_with_its_embedding(tiny_store, tiny_bert_dir, tiny_docs):
    store = FaissDocumentStore.load(tiny_store)
    docs = sorted(store.filter_documents(), key=lambda d: d.id)
    assert [d.id for d in docs] == [d.id for d in tiny_docs]
    expected = _embedder(tiny_bert_dir).run(tiny_docs)["documents"]
    np.testing.assert_allclose([d.embedding for d in docs], [d.embedding for d in expected], rtol=1e-5, atol=1e-5)
    assert docs[0].meta == {"title": "Hamlet"}


def test_build_record(tiny_store, tiny_bert_dir):
    info = read_build_info(tiny_store)
    embedder = _embedder(tiny_bert_dir)
    assert info["documents"] == 6 and info["embedding_dim"] == 32
    assert info["embedder"] == embedder.to_dict()
    assert info["fingerprint"] == embedder.encoder.fingerprint
    assert info["corpus"] == {"name": "tiny"}
    assert text_embedder_spec(info) == {
        "type": "spart.components.embedders.spider_text_embedder.SpiderTextEmbedder",
        "init_parameters": {
            k: v
            for k, v in embedder.to_dict()["init_parameters"].items()
            if k not in ("batch_size", "progress_bar", "title_field")
        },
    }


def test_art_record_maps_to_art_text_embedder(tmp_path, tiny_bert_dir, tiny_docs):
    info = build_store(tiny_docs, tmp_path / "art", _embedder(tiny_bert_dir, ARTDocumentEmbedder), progress=False)
    assert text_embedder_spec(info)["type"].endswith("ARTTextEmbedder")


def test_existing_store_needs_overwrite(tiny_store, tiny_bert_dir, tiny_docs):
    with pytest.raises(FileExistsError, match="already exists"):
        build_store(tiny_docs, tiny_store, _embedder(tiny_bert_dir), progress=False)


def test_failed_rebuild_leaves_previous_store_intact(tmp_path, tiny_bert_dir, tiny_docs):
    target = tmp_path / "store"
    build_store(tiny_docs[:2], target, _embedder(tiny_bert_dir), progress=False)

    def corpus():
        yield from tiny_docs
        yield Document(id="broken", content="   ")

    with pytest.raises(ValueError, match="'broken' has no text content"):
        build_store(corpus(), target, _embedder(tiny_bert_dir), overwrite=True, chunk_size=2, progress=False)
    assert FaissDocumentStore.load(target).count_documents() == 2
    assert read_build_info(target)["documents"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]  # no staging directory left behind

    build_store(tiny_docs, target, _embedder(tiny_bert_dir), overwrite=True, progress=False)
    assert FaissDocumentStore.load(target).count_documents() == 6


def test_consumes_the_corpus_lazily_in_chunks(tmp_path, tiny_bert_dir, tiny_docs):
    pulled = []

    def corpus():
        for doc in tiny_docs:
            pulled.append(doc.id)
            yield doc

    seen_at_write = []
    original = FaissDocumentStore.write_documents

    def spy(self, documents, *args, **kwargs):
        seen_at_write.append((len(documents), len(pulled)))
        return original(self, documents, *args, **kwargs)

    FaissDocumentStore.write_documents = spy
    try:
        build_store(corpus(), tmp_path / "s", _embedder(tiny_bert_dir), chunk_size=4, progress=False)
    finally:
        FaissDocumentStore.write_documents = original
    # The first chunk is written after 4 documents were read, not after the whole corpus.
    assert seen_at_write == [(4, 4), (2, 6)]


def test_empty_corpus_and_bad_chunk_size(tmp_path, tiny_bert_dir, tiny_docs):
    with pytest.raises(ValueError, match="no documents"):
        build_store([], tmp_path / "empty", _embedder(tiny_bert_dir), progress=False)
    assert not (tmp_path / "empty").exists()
    with pytest.raises(ValueError, match="chunk_size"):
        build_store(tiny_docs, tmp_path / "x", _embedder(tiny_bert_dir), chunk_size=0)


def test_corrupt_build_record(tmp_path):
    (tmp_path / BUILD_INFO_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="corrupt"):
        read_build_info(tmp_path)
    (tmp_path / BUILD_INFO_FILE).write_text(json.dumps({"format": 99}))
    with pytest.raises(ValueError, match="format"):
        read_build_info(tmp_path)
    assert read_build_info(tmp_path / "missing") is None
