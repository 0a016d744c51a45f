"""FaissDocumentStore: documents + metadata in SQLite, a FAISS inner-product index, and a bm25s index.

One store serves both retrievers of a hybrid pipeline (``FaissEmbeddingRetriever``, ``BM25Retriever``) from
one copy of the corpus, and persists as one directory.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import threading
import uuid
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from haystack import Document, default_from_dict, default_to_dict
from haystack.dataclasses import ByteStream, SparseEmbedding
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack.utils.filters import document_matches_filter

# Bound to a module name of its own so that tests can simulate a crash at one particular write.
from spart.atomic import write_bytes_atomic as _write_atomic
from spart.bm25 import BM25Index, Tokenizer
from spart.index import DenseIndex
from spart.validation import check_top_k

FORMAT_VERSION = 1
_CURRENT = "CURRENT"
_MANIFEST = "manifest.json"
_DB = "documents.sqlite"
_DENSE = "dense.index"
_TOKENS = "bm25_tokens.npz"  # cached BM25 token ids, so re-opening a store does not re-tokenize the corpus
_BATCH = 10_000  # rows per SQLite fetch / FAISS add: memory is bounded by this, not by the corpus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    rowid INTEGER PRIMARY KEY,   -- also the FAISS id and the BM25 key
    id TEXT NOT NULL UNIQUE,
    content TEXT,
    meta TEXT NOT NULL,          -- JSON
    embedding BLOB,              -- float32, NULL when the document has none
    blob_data BLOB,
    blob_info TEXT,              -- JSON {"meta", "mime_type"} of the ByteStream
    sparse_embedding TEXT        -- JSON of SparseEmbedding.to_dict()
)
"""
_COLUMNS = "rowid, id, content, meta, embedding, blob_data, blob_info, sparse_embedding"

# Open stores by (directory, configuration): from_dict hands out the same instance for the same saved
# snapshot, so the two retrievers of a hybrid pipeline loaded from YAML share one copy of the corpus.
_OPEN_STORES: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_OPEN_STORES_LOCK = threading.Lock()


class FaissDocumentStore:
    """Document store with dense (FAISS, inner product) and sparse (BM25, bm25s) retrieval.

    * Documents and metadata live in SQLite (in memory while the store is open); embeddings are stored as
      float32, the precision FAISS searches with, so a returned embedding equals the written one to float32
      precision (a deviation from Haystack's in-memory store, which keeps Python floats).
    * The dense index is a :class:`spart.index.DenseIndex` built from ``factory`` with ``embedding_dim``;
      a document's FAISS id is its SQLite rowid. Documents without an embedding are stored but are not in
      the dense index.
    * The BM25 index covers ``meta["title"] + " " + content``. Writes and deletes only mark it stale; the next
      ``bm25_retrieval`` rebuilds the score matrix from cached per-document token ids (tokenizing only new
      documents), a vectorised numpy pass over the whole corpus (0.2 s at 15.5k passages, 2 s at 155k on a
      loaded 2-core machine, see ``docs/benchmarks.md``): batch writes before querying. The token cache is
      saved with each snapshot, so re-opening a store does not re-tokenize the corpus (unless the tokenizer
      settings changed).
    * Removal from the dense index is native for ``Flat`` and IVF. HNSW hides deleted ids (tombstones) and
      rebuilds the graph once they pass 20% of it, or when an overwritten document's rowid is re-added, so
      overwrites in an HNSW store are expensive; PQ rebuilds on every delete (see :class:`DenseIndex`).
    * Filters (Haystack filter syntax) are evaluated in Python with
      ``haystack.utils.filters.document_matches_filter`` over all stored documents: on cached (id, meta) views
      when the filter only reads ``id`` / ``meta`` (60 ms for 15.5k documents), on full documents otherwise.
      Filtered dense retrieval is exact (brute force over the matching documents' embeddings), even when the
      index is approximate.
    * Writes are validated as a whole before anything changes (wrong embedding dimension, non-documents,
      documents with neither content, embedding nor blob -> ``ValueError``; duplicate ids with
      ``DuplicatePolicy.FAIL``/``NONE`` -> ``DuplicateDocumentError``); a failed write changes nothing.

    Persistence: with ``path=None`` the store is in memory only. With a path, the directory is opened if it
    holds a saved store (its ``embedding_dim``/``factory`` must match) and created on the first ``save()``
    otherwise. Changes reach disk only through :meth:`save`, which writes a complete snapshot into a temporary
    directory, renames it into place and then atomically switches the ``CURRENT`` pointer file; a crash at
    any point leaves the previous snapshot usable.

    :param path: Directory to open / save to, or ``None`` for an in-memory store.
    :param embedding_dim: Dimension of document and query embeddings.
    :param factory: FAISS index factory string (``"Flat"`` exact; ``"HNSW32"``, ``"IVF1024,PQ32"`` ...).
    :param nprobe: IVF lists probed per query.
    :param ef_search: HNSW search beam width.
    :param bm25_method: BM25 variant (``lucene`` default, ``okapi``, ``robertson``, ``atire``, ``bm25l``, ``bm25+``).
    :param bm25_k1: BM25 k1.
    :param bm25_b: BM25 b.
    :param bm25_delta: BM25L / BM25+ delta.
    :param bm25_stopwords: ``"en"``, ``None`` or a list of stop words (see :class:`spart.bm25.Tokenizer`).
    :param bm25_stemmer: ``None`` or a PyStemmer language such as ``"english"``.

    Example::

        store = FaissDocumentStore(path="corpus.store", embedding_dim=384)
        store.write_documents(docs_with_embeddings)
        store.save()
        store.bm25_retrieval("who wrote hamlet", top_k=5)
    """

    def __init__(
        self,
        path: str | None = None,
        embedding_dim: int = 768,
        factory: str = "Flat",
        nprobe: int | None = None,
        ef_search: int | None = None,
        bm25_method: str = "lucene",
        bm25_k1: float = 1.5,
        bm25_b: float = 0.75,
        bm25_delta: float = 0.5,
        bm25_stopwords: str | list[str] | None = "en",
        bm25_stemmer: str | None = None,
    ):
        self.path = None if path is None else str(path)
        self.embedding_dim = embedding_dim
        self.factory = factory
        self.nprobe = nprobe
        self.ef_search = ef_search
        self.bm25_method = bm25_method
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.bm25_delta = bm25_delta
        self.bm25_stopwords = bm25_stopwords
        self.bm25_stemmer = bm25_stemmer

        self._lock = threading.RLock()
        self._tokenizer = Tokenizer(stopwords=bm25_stopwords, stemmer=bm25_stemmer)
        # Validates method and parameters early; the real index is built on the first BM25 query.
        BM25Index(bm25_method, bm25_k1, bm25_b, bm25_delta)
        self._dense = DenseIndex(embedding_dim, factory, nprobe=nprobe, ef_search=ef_search)
        self._conn = self._new_connection()
        self._reset_bm25_cache()
        self._snapshot_name: str | None = None  # the snapshot this instance mirrors, when unchanged
        self._unsaved = False

        if self.path is not None:
            snapshot = self._current_snapshot(Path(self.path), must_exist=False)
            if snapshot is not None:
                self._load_snapshot(snapshot)
                self._snapshot_name = snapshot.name
            with _OPEN_STORES_LOCK:
                _OPEN_STORES[self._registry_key()] = self

    # ================================================================== serialisation
    def to_dict(self) -> dict[str, Any]:
        """Serialise the configuration (not the documents: those live in ``path``)."""
        return default_to_dict(
            self,
            path=self.path,
            embedding_dim=self.embedding_dim,
            factory=self.factory,
            nprobe=self.nprobe,
            ef_search=self.ef_search,
            bm25_method=self.bm25_method,
            bm25_k1=self.bm25_k1,
            bm25_b=self.bm25_b,
            bm25_delta=self.bm25_delta,
            bm25_stopwords=self.bm25_stopwords,
            bm25_stemmer=self.bm25_stemmer,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaissDocumentStore:
        """Re-create the store from :meth:`to_dict` output (re-opening ``path`` when it is set).

        An in-memory store (``path=None``) serialises its configuration only, so this gives an empty store
        (as with Haystack's InMemoryDocumentStore). For a ``path``, an already open instance with the same
        configuration is reused when it has no unsaved changes and mirrors the directory's current snapshot;
        so retrievers deserialised from one pipeline share one store (one copy of the corpus in memory).
        """
        params = data.get("init_parameters", {})
        if params.get("path") is not None:
            with _OPEN_STORES_LOCK:
                shared = _OPEN_STORES.get(_registry_key(params))
            if shared is not None and not shared._unsaved:
                try:
                    current = cls._current_snapshot(Path(shared.path), must_exist=False)
                except ValueError:
                    current = None
                if current is not None and current.name == shared._snapshot_name:
                    return shared
        return default_from_dict(cls, data)

    def _registry_key(self) -> tuple[str, str]:
        return _registry_key(self.to_dict()["init_parameters"])

    # ================================================================== protocol
    def count_documents(self) -> int:
        """Number of stored documents."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def filter_documents(self, filters: dict[str, Any] | None = None) -> list[Document]:
        """Documents matching Haystack ``filters`` (all documents when ``None`` or empty), in write order.

        :param filters: Haystack filter dict (``{"field": "meta.x", "operator": "==", "value": 1}`` or a
            logical ``{"operator": "AND", "conditions": [...]}``).
        :returns: The matching documents, with embeddings.
        :raises FilterError: On a malformed filter.
        """
        with self._lock:
            if filters and _light_filter_ok(filters):
                rowids = self._matching_rowids(filters)
                return self._documents_by_rowid(rowids, None, with_embedding=True)
            return [doc for _, doc in self._iter_matching(filters, with_embedding=True)]

    def write_documents(self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.NONE) -> int:
        """Write documents; all-or-nothing.

        :param documents: Documents to write. ``embedding`` may be ``None`` (then the document is not in the
            dense index); otherwise it must have ``embedding_dim`` values.
        :param policy: ``NONE``/``FAIL`` raise on an existing id, ``SKIP`` keeps the stored document,
            ``OVERWRITE`` replaces it. Repeated ids inside one call follow the same rule (``SKIP`` keeps the
            first, ``OVERWRITE`` the last).
        :returns: Number of documents written.
        :raises ValueError: If ``documents`` is not a list of Documents, a document has neither content,
            embedding nor blob, or an embedding has the wrong dimension or non-finite values.
        :raises DuplicateDocumentError: On a duplicate id with ``NONE``/``FAIL``.
        """
        batch = self._validate(documents)
        if policy == DuplicatePolicy.NONE:
            policy = DuplicatePolicy.FAIL
        with self._lock:
            batch = self._dedupe_batch(batch, policy)
            if not batch:
                return 0
            existing = self._existing_rowids([d.id for d in batch])
            if policy == DuplicatePolicy.FAIL and existing:
                raise DuplicateDocumentError(
                    f"{len(existing)} document(s) already exist, e.g. id {next(iter(existing))!r}"
                )
            if policy == DuplicatePolicy.SKIP:
                batch = [d for d in batch if d.id not in existing]
                if not batch:
                    return 0
            self._write_batch(batch, existing)
            return len(batch)

    def delete_documents(self, document_ids: list[str]) -> None:
        """Delete documents by id; unknown ids are ignored.

        :param document_ids: Ids to delete.
        """
        with self._lock:
            rowids = list(self._existing_rowids(list(document_ids)).values())
            if not rowids:
                return
            cur = self._conn.cursor()
            cur.execute("BEGIN")
            try:
                cur.executemany("DELETE FROM documents WHERE rowid = ?", [(r,) for r in rowids])
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            self._dense.remove(np.asarray(rowids, dtype=np.int64))
            if self._doc_tokens is not None:
                for r in rowids:
                    self._doc_tokens.pop(r, None)
            self._bm25_stale = True
            self._views = None
            self._unsaved = True

    def delete_all_documents(self, recreate_index: bool = False) -> None:
        """Remove every document.

        :param recreate_index: Also forget the dense index's training (IVF / PQ quantizers); by default a
            trained index stays trained.
        """
        with self._lock:
            self._conn.execute("DELETE FROM documents")
            if recreate_index:
                self._dense.reset()
            else:
                self._dense.clear()
            self._reset_bm25_cache()
            self._unsaved = True

    def count_documents_by_filter(self, filters: dict[str, Any]) -> int:
        """Number of documents matching Haystack ``filters``."""
        with self._lock:
            return len(self._matching_rowids(filters))

    def delete_by_filter(self, filters: dict[str, Any]) -> int:
        """Delete the documents matching Haystack ``filters``.

        :returns: Number of documents deleted.
        """
        with self._lock:
            if _light_filter_ok(filters):
                ids = [view.id for _, view in self._filter_views() if document_matches_filter(filters, view)]
            else:
                ids = [doc.id for _, doc in self._iter_matching(filters)]
            self.delete_documents(ids)
            return len(ids)

    def update_by_filter(self, filters: dict[str, Any], meta: dict[str, Any]) -> int:
        """Merge ``meta`` into the metadata of the documents matching Haystack ``filters``.

        :returns: Number of documents updated.
        :raises ValueError: If ``meta`` is not a JSON-serialisable dict.
        """
        if not isinstance(meta, dict):
            raise ValueError(f"meta must be a dict, got {type(meta).__name__}")
        try:
            json.dumps(meta)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"meta is not JSON-serialisable: {exc}") from exc
        with self._lock:
            updates = [(rowid, {**doc.meta, **meta}, doc.content) for rowid, doc in self._iter_matching(filters)]
            cur = self._conn.cursor()
            cur.execute("BEGIN")
            try:
                cur.executemany(
                    "UPDATE documents SET meta=? WHERE rowid=?", [(json.dumps(m), r) for r, m, _ in updates]
                )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            self._views = None
            self._unsaved = True
            if "title" in meta and self._doc_tokens is not None:  # the title is part of the BM25 text
                for rowid, new_meta, content in updates:
                    self._doc_tokens[rowid] = self._token_ids(_bm25_text(content, new_meta))
                self._bm25_stale = True
            return len(updates)

    # ================================================================== retrieval
    def embedding_retrieval(
        self,
        query_embedding: Sequence[float] | np.ndarray,
        top_k: int = 10,
        filters: dict[str, Any] | None = None,
        return_embedding: bool = False,
    ) -> list[Document]:
        """Documents with the highest inner product with ``query_embedding``.

        Without filters this searches the FAISS index (exact for ``Flat``); with filters it scores the
        matching documents exactly.

        :param query_embedding: ``embedding_dim`` floats.
        :param top_k: Maximum number of documents (> 0).
        :param filters: Optional Haystack filters.
        :param return_embedding: Include document embeddings in the results.
        :returns: Documents sorted by descending ``score`` (the inner product).
        :raises ValueError: On ``top_k <= 0`` or a query embedding of the wrong dimension.
        """
        check_top_k(top_k)
        query = _as_query_vector(query_embedding, self.embedding_dim)
        with self._lock:
            if filters:
                scores, rowids = self._filtered_dense_search(query, top_k, filters)
            else:
                # cap k: the index pads results to k, and a huge top_k must not allocate a huge array
                s, i = self._dense.search(query, min(top_k, max(len(self._dense), 1)))
                keep = i[0] != -1
                scores, rowids = s[0][keep], i[0][keep]
            return self._documents_by_rowid(rowids, scores, with_embedding=return_embedding)

    def bm25_retrieval(
        self, query: str, top_k: int = 10, filters: dict[str, Any] | None = None
    ) -> list[Document]:
        """Documents with the highest BM25 score for ``query``; only documents sharing a token are returned.

        :param query: Non-empty query text. A query whose tokens are all stop words returns ``[]``.
        :param top_k: Maximum number of documents (> 0).
        :param filters: Optional Haystack filters.
        :returns: Documents sorted by descending BM25 ``score``.
        :raises ValueError: On ``top_k <= 0`` or an empty / non-string query.
        """
        check_top_k(top_k)
        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"query must be a non-empty string, got {query!r}")
        tokens = self._tokenizer(query)
        with self._lock:
            index, positions_rowids = self._bm25_index()
            allowed = None
            if filters:
                match = self._matching_rowids(filters)
                allowed = np.isin(positions_rowids, match)
            if index.n_docs == 0:
                return []
            scores, positions = index.search(tokens, top_k, allowed=allowed)
            return self._documents_by_rowid(positions_rowids[positions], scores, with_embedding=False)

    # ================================================================== persistence
    def save(self, path: str | os.PathLike | None = None) -> None:
        """Write a complete snapshot to ``path`` (default: the store's ``path``) atomically.

        :raises ValueError: If the store is in memory and no ``path`` is given.
        """
        target = Path(path) if path is not None else (Path(self.path) if self.path is not None else None)
        if target is None:
            raise ValueError("this FaissDocumentStore is in memory (path=None): pass save(path=...)")
        with self._lock:
            if target.exists() and not target.is_dir():
                raise ValueError(f"cannot save the document store to {target}: it exists and is not a directory")
            target.mkdir(parents=True, exist_ok=True)
            self._current_snapshot(target, must_exist=False)  # refuse to overwrite a foreign directory
            self._ensure_tokens()  # saved with the snapshot, so re-opening never re-tokenizes the corpus
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target))
            try:
                self._write_snapshot(tmp)
                final = target / f"snap-{uuid.uuid4().hex[:12]}"
                os.rename(tmp, final)
                _write_atomic(target / _CURRENT, json.dumps({"snapshot": final.name}).encode())
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            # Only after CURRENT points to the new snapshot is anything old removed.
            for child in target.iterdir():
                if child.is_dir() and child != final and (child.name.startswith((".tmp-", "snap-"))):
                    shutil.rmtree(child, ignore_errors=True)
            if self.path is None:
                self.path = str(target)
            if os.path.realpath(self.path) == os.path.realpath(target):
                self._snapshot_name, self._unsaved = final.name, False
                with _OPEN_STORES_LOCK:
                    _OPEN_STORES[self._registry_key()] = self

    @classmethod
    def load(cls, path: str | os.PathLike, **overrides: Any) -> FaissDocumentStore:
        """Open a saved store; configuration comes from the snapshot's manifest.

        :param path: Directory written by :meth:`save`.
        :param overrides: BM25 settings to use instead of the saved ones (``bm25_method`` ...).
        :raises FileNotFoundError: If ``path`` or its snapshot is missing.
        :raises ValueError: If the directory is not a valid store or is corrupt.
        """
        path = Path(path)
        snapshot = cls._current_snapshot(path, must_exist=True)
        manifest = _read_manifest(snapshot)
        params = dict(manifest["config"])
        params.update(overrides)
        return cls(path=str(path), **params)

    # ================================================================== internals: validation
    def _validate(self, documents: Any) -> list[Document]:
        if not isinstance(documents, list):
            raise ValueError(f"write_documents expects a list of Documents, got {type(documents).__name__}")
        for i, doc in enumerate(documents):
            if not isinstance(doc, Document):
                raise ValueError(f"write_documents expects Documents; item {i} is a {type(doc).__name__}")
            if not doc.content and doc.embedding is None and doc.blob is None:
                raise ValueError(f"document {doc.id!r} has no content, no embedding and no blob")
            if doc.embedding is not None:
                emb = np.asarray(doc.embedding, dtype=np.float32)
                if emb.ndim != 1 or emb.shape[0] != self.embedding_dim:
                    raise ValueError(
                        f"document {doc.id!r} has an embedding of dimension {emb.shape}, "
                        f"but the store's embedding_dim is {self.embedding_dim}"
                    )
                if not np.isfinite(emb).all():
                    raise ValueError(f"document {doc.id!r} has NaN or infinite embedding values")
            try:
                json.dumps(doc.meta)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"document {doc.id!r} has meta that is not JSON-serialisable: {exc}") from exc
        return documents

    @staticmethod
    def _dedupe_batch(batch: list[Document], policy: DuplicatePolicy) -> list[Document]:
        seen: dict[str, Document] = {}
        for doc in batch:
            if doc.id in seen:
                if policy == DuplicatePolicy.FAIL:
                    raise DuplicateDocumentError(f"id {doc.id!r} occurs more than once in this write")
                if policy == DuplicatePolicy.SKIP:
                    continue
            seen[doc.id] = doc
        return list(seen.values())

    # ================================================================== internals: writing
    def _write_batch(self, batch: list[Document], existing: dict[str, int]) -> None:
        embedded = [d for d in batch if d.embedding is not None]
        if embedded and not self._dense.is_trained:
            # Train before touching anything so that a too-small first batch leaves the store unchanged.
            self._dense.train(np.asarray([d.embedding for d in embedded], dtype=np.float32))
        rows = [_document_to_row(d) for d in batch]
        cur = self._conn.cursor()
        try:
            cur.execute("BEGIN")
            overwritten = [existing[d.id] for d in batch if d.id in existing]
            if overwritten:
                cur.executemany(
                    "UPDATE documents SET content=?, meta=?, embedding=?, blob_data=?, blob_info=?, "
                    "sparse_embedding=? WHERE rowid=?",
                    [row[1:] + (existing[d.id],) for d, row in zip(batch, rows) if d.id in existing],
                )
            fresh = [row for d, row in zip(batch, rows) if d.id not in existing]
            cur.executemany(
                "INSERT INTO documents (id, content, meta, embedding, blob_data, blob_info, sparse_embedding) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                fresh,
            )
            rowid_of = self._existing_rowids([d.id for d in batch], cursor=cur)
            if overwritten:
                self._dense.remove(np.asarray(overwritten, dtype=np.int64))
            for start in range(0, len(embedded), _BATCH):
                chunk = embedded[start : start + _BATCH]
                self._dense.add(
                    np.asarray([d.embedding for d in chunk], dtype=np.float32),
                    np.asarray([rowid_of[d.id] for d in chunk], dtype=np.int64),
                )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        if self._doc_tokens is not None:
            for d in batch:
                self._doc_tokens[rowid_of[d.id]] = self._token_ids(_bm25_text(d.content, d.meta))
        self._bm25_stale = True
        self._views = None
        self._unsaved = True

    def _existing_rowids(self, ids: list[str], cursor=None) -> dict[str, int]:
        cur = cursor or self._conn
        found: dict[str, int] = {}
        for start in range(0, len(ids), 900):  # SQLite's bound-parameter limit
            chunk = ids[start : start + 900]
            marks = ",".join("?" * len(chunk))
            found.update(cur.execute(f"SELECT id, rowid FROM documents WHERE id IN ({marks})", chunk).fetchall())
        return found

    # ================================================================== internals: reading
    def _iter_matching(
        self, filters: dict[str, Any] | None, with_embedding: bool = False
    ) -> Iterator[tuple[int, Document]]:
        emb_col = "embedding" if with_embedding else "NULL"
        cur = self._conn.execute(
            f"SELECT rowid, id, content, meta, {emb_col}, blob_data, blob_info, sparse_embedding "
            "FROM documents ORDER BY rowid"
        )
        while rows := cur.fetchmany(_BATCH):
            for row in rows:
                doc = _row_to_document(row)
                if not filters or document_matches_filter(filters, doc):
                    yield row[0], doc

    def _documents_by_rowid(
        self, rowids: np.ndarray, scores: np.ndarray | None, with_embedding: bool
    ) -> list[Document]:
        emb_col = "embedding" if with_embedding else "NULL"
        wanted = [int(r) for r in rowids]
        docs = []
        for start in range(0, len(wanted), 900):  # SQLite's bound-parameter limit
            chunk = wanted[start : start + 900]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT rowid, id, content, meta, {emb_col}, blob_data, blob_info, sparse_embedding "
                f"FROM documents WHERE rowid IN ({marks})",
                chunk,
            ).fetchall()
            by_rowid = {row[0]: row for row in rows}
            for i, r in enumerate(chunk, start):
                docs.append(_row_to_document(by_rowid[r], score=None if scores is None else float(scores[i])))
        return docs

    def _filter_views(self) -> list[tuple[int, _FilterView]]:
        """(rowid, id + meta view) of every document, cached until the next write, delete or update."""
        if self._views is None:
            views = []
            cur = self._conn.execute("SELECT rowid, id, meta FROM documents ORDER BY rowid")
            while rows := cur.fetchmany(_BATCH):
                views.extend((rowid, _FilterView(id=doc_id, meta=json.loads(meta))) for rowid, doc_id, meta in rows)
            self._views = views
        return self._views

    def _matching_rowids(self, filters: dict[str, Any]) -> np.ndarray:
        """Rowids of the documents matching ``filters`` (in rowid order)."""
        if _light_filter_ok(filters):
            # Filters on id / meta only: evaluate on cached light views instead of building full Documents.
            rows = (r for r, view in self._filter_views() if document_matches_filter(filters, view))
        else:
            rows = (r for r, _ in self._iter_matching(filters))
        return np.fromiter(rows, dtype=np.int64)

    def _filtered_dense_search(self, query: np.ndarray, top_k: int, filters: dict[str, Any]):
        best_scores = np.zeros(0, dtype=np.float32)
        best_ids = np.zeros(0, dtype=np.int64)
        rowids: list[int] = []
        vectors: list[np.ndarray] = []

        def flush():
            nonlocal best_scores, best_ids
            if not rowids:
                return
            s = np.stack(vectors) @ query
            best_scores = np.concatenate([best_scores, s.astype(np.float32)])
            best_ids = np.concatenate([best_ids, np.asarray(rowids, dtype=np.int64)])
            order = np.lexsort((best_ids, -best_scores.astype(np.float64)))[:top_k]
            best_scores, best_ids = best_scores[order], best_ids[order]
            rowids.clear()
            vectors.clear()

        matching = self._matching_rowids(filters).tolist()
        for start in range(0, len(matching), 900):  # SQLite's bound-parameter limit
            chunk = matching[start : start + 900]
            marks = ",".join("?" * len(chunk))
            for rowid, emb in self._conn.execute(
                f"SELECT rowid, embedding FROM documents WHERE rowid IN ({marks}) AND embedding IS NOT NULL", chunk
            ):
                rowids.append(rowid)
                vectors.append(np.frombuffer(emb, dtype="<f4"))
            if len(rowids) >= _BATCH:
                flush()
        flush()
        return best_scores, best_ids

    # ================================================================== internals: BM25
    def _reset_bm25_cache(self) -> None:
        self._views: list[tuple[int, _FilterView]] | None = None  # see _filter_views()
        self._vocab: dict[str, int] = {}
        self._doc_tokens: dict[int, np.ndarray] | None = None  # None: not tokenized yet (lazy after load)
        self._bm25: BM25Index | None = None
        self._bm25_rowids = np.zeros(0, dtype=np.int64)
        self._bm25_stale = True

    def _token_ids(self, text: str) -> np.ndarray:
        vocab = self._vocab
        return np.fromiter((vocab.setdefault(t, len(vocab)) for t in self._tokenizer(text)), dtype=np.int64)

    def _ensure_tokens(self) -> None:
        if self._doc_tokens is None:
            self._doc_tokens = {}
            cur = self._conn.execute("SELECT rowid, content, meta FROM documents ORDER BY rowid")
            while rows := cur.fetchmany(_BATCH):
                for rowid, content, meta in rows:
                    self._doc_tokens[rowid] = self._token_ids(_bm25_text(content, json.loads(meta)))

    def _bm25_index(self) -> tuple[BM25Index, np.ndarray]:
        self._ensure_tokens()
        if self._bm25_stale or self._bm25 is None:
            rowids = np.fromiter(sorted(self._doc_tokens), dtype=np.int64, count=len(self._doc_tokens))
            index = BM25Index(self.bm25_method, self.bm25_k1, self.bm25_b, self.bm25_delta)
            index.build_from_ids([self._doc_tokens[int(r)] for r in rowids], self._vocab)
            self._bm25, self._bm25_rowids, self._bm25_stale = index, rowids, False
        return self._bm25, self._bm25_rowids

    # ================================================================== internals: snapshots
    @staticmethod
    def _new_connection() -> sqlite3.Connection:
        # Retrievers may run in worker threads (AsyncPipeline); access is serialised by self._lock.
        conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        conn.execute(_SCHEMA)
        return conn

    def _config(self) -> dict[str, Any]:
        return {k: v for k, v in self.to_dict()["init_parameters"].items() if k != "path"}

    def _write_snapshot(self, directory: Path) -> None:
        disk = sqlite3.connect(directory / _DB)
        try:
            self._conn.backup(disk)
        finally:
            disk.close()
        self._dense.save(directory / _DENSE)
        if self._doc_tokens is not None:
            self._save_tokens(directory / _TOKENS)
        n_docs = self.count_documents()
        n_vectors = len(self._dense)
        manifest = {
            "format_version": FORMAT_VERSION,
            "config": self._config(),
            "documents": n_docs,
            "vectors": n_vectors,
        }
        _write_atomic(directory / _MANIFEST, json.dumps(manifest, indent=2).encode())  # also fsyncs the directory

    @staticmethod
    def _current_snapshot(path: Path, must_exist: bool) -> Path | None:
        if not path.exists():
            if must_exist:
                raise FileNotFoundError(f"document store directory not found: {path}")
            return None
        if not path.is_dir():
            raise ValueError(f"document store path {path} exists but is not a directory")
        pointer = path / _CURRENT
        if not pointer.is_file():
            others = [c.name for c in path.iterdir() if not c.name.startswith(".tmp-")]
            if must_exist or others:
                raise ValueError(f"{path} is not a FaissDocumentStore directory (no {_CURRENT} file)")
            return None  # empty directory: a new store
        try:
            name = json.loads(pointer.read_text())["snapshot"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{pointer} is corrupt: {exc}") from exc
        snapshot = path / name
        if not snapshot.is_dir():
            raise ValueError(f"{path} is corrupt: {_CURRENT} points to missing snapshot {name!r}")
        return snapshot

    def _load_snapshot(self, snapshot: Path) -> None:
        manifest = _read_manifest(snapshot)
        saved = manifest["config"]
        for key in ("embedding_dim", "factory"):
            if saved.get(key) != getattr(self, key):
                raise ValueError(
                    f"{snapshot.parent} holds a store with {key}={saved.get(key)!r}, "
                    f"but this FaissDocumentStore was created with {key}={getattr(self, key)!r}"
                )
        db = snapshot / _DB
        if not db.is_file():
            raise ValueError(f"{snapshot} is corrupt: {_DB} is missing")
        try:
            disk = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                disk.backup(self._conn)
            finally:
                disk.close()
            n_docs = self.count_documents()
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{db} is corrupt: {exc}") from exc
        dense = DenseIndex.load(snapshot / _DENSE) if (snapshot / _DENSE).is_file() else None
        if dense is None:
            raise ValueError(f"{snapshot} is corrupt: {_DENSE} is missing")
        if dense.dim != self.embedding_dim:
            raise ValueError(f"{snapshot / _DENSE} has dimension {dense.dim}, expected {self.embedding_dim}")
        n_embedded = self._conn.execute("SELECT COUNT(*) FROM documents WHERE embedding IS NOT NULL").fetchone()[0]
        if n_docs != manifest.get("documents") or len(dense) != n_embedded:
            raise ValueError(
                f"{snapshot} is corrupt: manifest says {manifest.get('documents')} documents, the database has "
                f"{n_docs} ({n_embedded} with embeddings) and the dense index {len(dense)} vectors"
            )
        dense.nprobe, dense.ef_search = self.nprobe, self.ef_search
        dense._apply_search_params(dense._index)
        self._dense = dense
        self._reset_bm25_cache()
        self._load_tokens(snapshot / _TOKENS, saved)

    def _tokenizer_config(self, config: dict[str, Any]) -> tuple:
        return (config.get("bm25_stopwords"), config.get("bm25_stemmer"))

    def _save_tokens(self, file: Path) -> None:
        rowids = np.fromiter(sorted(self._doc_tokens), dtype=np.int64, count=len(self._doc_tokens))
        arrays = [self._doc_tokens[int(r)] for r in rowids]
        terms = sorted(self._vocab, key=self._vocab.__getitem__)
        with open(file, "wb") as fh:
            np.savez(
                fh,
                rowids=rowids,
                lengths=np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays)),
                ids=np.concatenate(arrays) if arrays else np.zeros(0, np.int64),
                # JSON bytes, not a numpy string array: that would pad every term to the longest one
                vocab=np.frombuffer(json.dumps(terms).encode(), dtype=np.uint8),
            )

    def _load_tokens(self, file: Path, saved_config: dict[str, Any]) -> None:
        """Restore the token cache if it was written with the same tokenizer; otherwise tokenize lazily."""
        if not file.is_file() or self._tokenizer_config(saved_config) != self._tokenizer_config(self._config()):
            return
        try:
            with np.load(file, allow_pickle=False) as data:
                rowids, lengths, ids = data["rowids"], data["lengths"], data["ids"]
                terms = json.loads(data["vocab"].tobytes().decode())
        except (OSError, ValueError, KeyError, UnicodeDecodeError) as exc:
            raise ValueError(f"{file} is corrupt: {exc}") from exc
        stored = np.fromiter(
            (r for (r,) in self._conn.execute("SELECT rowid FROM documents ORDER BY rowid")), dtype=np.int64
        )
        if not np.array_equal(stored, rowids) or lengths.sum() != len(ids) or (len(ids) and ids.max() >= len(terms)):
            raise ValueError(f"{file} is corrupt: it does not match the stored documents")
        self._vocab = {t: i for i, t in enumerate(terms)}
        self._doc_tokens = dict(zip(rowids.tolist(), np.split(ids, np.cumsum(lengths)[:-1]) if len(rowids) else []))


# ====================================================================== helpers
@dataclass
class _FilterView:
    """A document's id and meta only, for evaluating filters without building full Documents.

    Field names mirror ``Document`` because ``document_matches_filter`` checks them with
    ``dataclasses.fields``; only filters on ``id`` and ``meta`` are evaluated on views.
    """

    id: str
    meta: dict[str, Any]
    content: None = None
    blob: None = None
    score: None = None
    embedding: None = None
    sparse_embedding: None = None


_HEAVY_FIELDS = ("content", "blob", "score", "embedding", "sparse_embedding")


def _filter_fields(filters: Any) -> Iterator[str]:
    if isinstance(filters, dict):
        if "field" in filters:
            yield str(filters["field"])
        for condition in filters.get("conditions", ()) if isinstance(filters.get("conditions"), list) else ():
            yield from _filter_fields(condition)


def _light_filter_ok(filters: dict[str, Any]) -> bool:
    """Whether ``filters`` only look at ``id`` and metadata (so a :class:`_FilterView` suffices)."""
    return all(f.split(".", 1)[0] not in _HEAVY_FIELDS for f in _filter_fields(filters))


def _registry_key(init_parameters: dict[str, Any]) -> tuple[str, str]:
    config = {k: v for k, v in init_parameters.items() if k != "path"}
    return os.path.realpath(str(init_parameters["path"])), json.dumps(config, sort_keys=True, default=str)


def _as_query_vector(query_embedding: Any, dim: int) -> np.ndarray:
    if query_embedding is None:
        raise ValueError("query_embedding is None")
    q = np.asarray(query_embedding, dtype=np.float32)
    if q.ndim != 1 or q.shape[0] != dim:
        raise ValueError(f"query_embedding has shape {q.shape}, but the store's embedding_dim is {dim}")
    if not np.isfinite(q).all():
        raise ValueError("query_embedding contains NaN or infinite values")
    return q


def _bm25_text(content: str | None, meta: dict[str, Any]) -> str:
    title = meta.get("title")
    title = title if isinstance(title, str) else ""
    return f"{title} {content or ''}".strip()


def _document_to_row(doc: Document) -> tuple:
    emb = None if doc.embedding is None else np.asarray(doc.embedding, dtype="<f4").tobytes()
    blob_data = blob_info = None
    if doc.blob is not None:
        blob_data = doc.blob.data
        blob_info = json.dumps({"meta": doc.blob.meta, "mime_type": doc.blob.mime_type})
    sparse = None if doc.sparse_embedding is None else json.dumps(doc.sparse_embedding.to_dict())
    return (doc.id, doc.content, json.dumps(doc.meta), emb, blob_data, blob_info, sparse)


def _row_to_document(row: tuple, score: float | None = None) -> Document:
    _, doc_id, content, meta, emb, blob_data, blob_info, sparse = row
    blob = None
    if blob_info is not None:
        info = json.loads(blob_info)
        blob = ByteStream(data=bytes(blob_data), meta=info["meta"], mime_type=info["mime_type"])
    return Document(
        id=doc_id,
        content=content,
        meta=json.loads(meta),
        embedding=None if emb is None else np.frombuffer(emb, dtype="<f4").tolist(),
        blob=blob,
        sparse_embedding=None if sparse is None else SparseEmbedding.from_dict(json.loads(sparse)),
        score=score,
    )


def _read_manifest(snapshot: Path) -> dict[str, Any]:
    file = snapshot / _MANIFEST
    if not file.is_file():
        raise ValueError(f"{snapshot} is corrupt: {_MANIFEST} is missing")
    try:
        manifest = json.loads(file.read_text())
        if manifest["format_version"] != FORMAT_VERSION or not isinstance(manifest["config"], dict):
            raise ValueError(f"unsupported format_version {manifest['format_version']!r}")
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{file} is corrupt: {exc}") from exc
    return manifest
