"""A format-1 store directory (snapshots, written by the store before format 2) opens and can be migrated."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from haystack import Document

from spart.cli import main
from spart.components.document_stores import FaissDocumentStore
from spart.components.document_stores.faiss import persistence
from spart.index import DenseIndex

_V1_SCHEMA = """
CREATE TABLE documents (rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, content TEXT, meta TEXT NOT NULL,
    embedding BLOB, blob_data BLOB, blob_info TEXT, sparse_embedding TEXT)
"""


def write_v1_store(path, docs: list[Document], factory: str = "Flat") -> None:
    """The layout format 1 wrote: CURRENT -> snap-*/ {documents.sqlite, dense.index, manifest.json}."""
    snapshot = path / "snap-0123456789ab"
    snapshot.mkdir(parents=True)
    dim = len(docs[0].embedding)
    conn = sqlite3.connect(snapshot / "documents.sqlite")
    conn.execute(_V1_SCHEMA)
    dense = DenseIndex(dim, factory)
    for rowid, d in enumerate(docs, start=1):
        conn.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL)",
            (rowid, d.id, d.content, json.dumps(d.meta), np.asarray(d.embedding, "<f4").tobytes()),
        )
        dense.add(np.asarray([d.embedding], np.float32), np.asarray([rowid]))
    conn.commit()
    conn.close()
    dense.save(snapshot / "dense.index")
    config = {
        "embedding_dim": dim,
        "factory": factory,
        "nprobe": None,
        "ef_search": None,
        "bm25_method": "okapi",
        "bm25_k1": 1.5,
        "bm25_b": 0.75,
        "bm25_delta": 0.5,
        "bm25_stopwords": "en",
        "bm25_stemmer": None,
    }
    (snapshot / "manifest.json").write_text(
        json.dumps({"format_version": 1, "config": config, "documents": len(docs), "vectors": len(docs)})
    )
    (path / "CURRENT").write_text(json.dumps({"snapshot": snapshot.name}))


def _docs(n=12):
    rng = np.random.default_rng(3)
    return [
        Document(
            id=f"d{i}",
            content=f"passage {i} about topic{i % 4}",
            meta={"title": f"T{i}", "i": i},
            embedding=rng.standard_normal(4).tolist(),
        )
        for i in range(n)
    ]


def test_v1_store_is_migrated_on_open(tmp_path):
    path = tmp_path / "old"
    docs = _docs()
    write_v1_store(path, docs)
    assert persistence.read_config(path)["bm25_method"] == "okapi"  # readable without migrating
    store = FaissDocumentStore.load(path)
    assert not (path / "CURRENT").exists() and (path / persistence.DB_FILE).is_file()
    assert store.count_documents() == 12 and store.bm25_method == "okapi"
    q = np.ones(4)
    want = np.argsort(-np.asarray([d.embedding for d in docs]) @ q)[:3]
    assert [d.id for d in store.embedding_retrieval(q, 3)] == [f"d{i}" for i in want]
    assert {d.id for d in store.bm25_retrieval("topic1", 5)} == {"d1", "d5", "d9"}
    store.write_documents([Document(id="new", content="fresh", embedding=[0.0, 0.0, 0.0, 1.0])])
    assert FaissDocumentStore.load(path).count_documents() == 13


def test_migrate_store_command(tmp_path, capsys):
    path = tmp_path / "old"
    write_v1_store(path, _docs(5))
    assert main(["migrate-store", str(path)]) == 0
    assert "migrated to format 2 (5 documents)" in capsys.readouterr().out
    assert len(list((path / "index").glob("ckpt-*"))) == 1  # BM25 and dense checkpointed
    assert main(["migrate-store", str(path)]) == 0
    assert "already in the current format" in capsys.readouterr().out
    (tmp_path / "junk").mkdir()
    assert main(["migrate-store", str(tmp_path / "junk")]) == 2
    assert "not a format-1" in capsys.readouterr().err


def test_interrupted_migration_leaves_the_v1_store_usable(tmp_path, monkeypatch):
    path = tmp_path / "old"
    write_v1_store(path, _docs(5))

    def crash(*args, **kwargs):
        raise OSError("power cut (simulated)")

    monkeypatch.setattr(persistence.os, "replace", crash)  # dies just before the commit point
    with pytest.raises(OSError, match="power cut"):
        persistence.migrate_v1(path)
    monkeypatch.undo()
    assert (path / "CURRENT").is_file() and not (path / persistence.DB_FILE).exists()
    assert FaissDocumentStore.load(path).count_documents() == 5  # the retry succeeds
