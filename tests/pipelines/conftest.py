"""A tiny store built with the tiny random BERT, shared by the pipeline tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from haystack import Document

CORPUS = [
    ("Hamlet", "Hamlet is a tragedy written by William Shakespeare around the year 1600."),
    ("Gyroscope", "A gyroscope is a spinning device used for measuring orientation and angular velocity."),
    ("Moon", "The Moon is the only natural satellite of the Earth and causes the ocean tides."),
    ("Sputnik 1", "Sputnik 1 was the first artificial satellite, launched by the Soviet Union in 1957."),
    ("Andromeda Galaxy", "The Andromeda Galaxy is the nearest major galaxy to the Milky Way."),
    ("Bingo", "In bingo the number twenty two is called two little ducks by the caller."),
]


def tiny_documents() -> list[Document]:
    return [Document(id=f"doc:{i}", content=text, meta={"title": title}) for i, (title, text) in enumerate(CORPUS)]


@pytest.fixture
def tiny_docs() -> list[Document]:
    """The six documents above, fresh for each test."""
    return tiny_documents()


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory, tiny_bert_dir) -> Path:
    """A FaissDocumentStore directory of the six documents above, embedded by SpiderDocumentEmbedder(tiny BERT)."""
    from spart.components.embedders import SpiderDocumentEmbedder
    from spart.pipelines import build_store

    store = tmp_path_factory.mktemp("stores") / "tiny"
    embedder = SpiderDocumentEmbedder(model=str(tiny_bert_dir), device="cpu", precision="fp32", progress_bar=False)
    build_store(iter(tiny_documents()), store, embedder, chunk_size=4, progress=False, corpus_info={"name": "tiny"})
    return store
