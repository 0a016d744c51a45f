"""Rows of the ``documents`` table <-> Haystack Documents, and the text BM25 indexes for a document."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from haystack import Document
from haystack.dataclasses import ByteStream, SparseEmbedding

# Columns read by `row_to_document`, in order; the embedding column may be replaced by NULL (see `select_columns`).
COLUMNS = ("rowid", "id", "content", "meta", "embedding", "blob_data", "blob_info", "sparse_embedding")
INSERT_SQL = (
    "INSERT INTO documents (id, content, meta, embedding, blob_data, blob_info, sparse_embedding) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def select_columns(with_embedding: bool) -> str:
    """The SELECT list for `row_to_document`; without embeddings the blob is not even read from disk."""
    return ", ".join(c if c != "embedding" or with_embedding else "NULL" for c in COLUMNS)


def embedding_to_blob(embedding: Any) -> bytes | None:
    return None if embedding is None else np.asarray(embedding, dtype="<f4").tobytes()


def blob_to_embedding(blob: bytes | None) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, dtype="<f4")


def document_to_row(doc: Document, meta: str | None = None, embedding: bytes | None = None) -> tuple:
    """The values of `INSERT_SQL` for ``doc``.

    :param meta: ``json.dumps(doc.meta)`` when the caller has it already.
    :param embedding: ``embedding_to_blob(doc.embedding)`` when the caller has it already.
    """
    blob_data = blob_info = None
    if doc.blob is not None:
        blob_data = doc.blob.data
        blob_info = json.dumps({"meta": doc.blob.meta, "mime_type": doc.blob.mime_type})
    sparse = None if doc.sparse_embedding is None else json.dumps(doc.sparse_embedding.to_dict())
    if meta is None:
        meta = json.dumps(doc.meta)
    if embedding is None:
        embedding = embedding_to_blob(doc.embedding)
    return (doc.id, doc.content, meta, embedding, blob_data, blob_info, sparse)


def blob_from_columns(blob_data: bytes | None, blob_info: str | None) -> ByteStream | None:
    if blob_info is None:
        return None
    info = json.loads(blob_info)
    return ByteStream(data=bytes(blob_data), meta=info["meta"], mime_type=info["mime_type"])


def sparse_from_column(sparse: str | None) -> SparseEmbedding | None:
    return None if sparse is None else SparseEmbedding.from_dict(json.loads(sparse))


def row_to_document(row: tuple, score: float | None = None) -> Document:
    """A Document from a row selected with `select_columns`."""
    _, doc_id, content, meta, emb, blob_data, blob_info, sparse = row
    embedding = blob_to_embedding(emb)
    return Document(
        id=doc_id,
        content=content,
        meta=json.loads(meta),
        embedding=None if embedding is None else embedding.tolist(),
        blob=blob_from_columns(blob_data, blob_info),
        sparse_embedding=sparse_from_column(sparse),
        score=score,
    )


def bm25_text(content: str | None, meta: dict[str, Any] | str) -> str:
    """What BM25 indexes for a document: ``meta["title"] + " " + content``."""
    if isinstance(meta, str):
        meta = json.loads(meta)
    title = meta.get("title")
    title = title if isinstance(title, str) else ""
    return f"{title} {content or ''}".strip()
