"""FaissDocumentStore: an embedded database of documents with dense (FAISS) and BM25 retrieval.

One store serves both retrievers of a hybrid pipeline (``FaissEmbeddingRetriever``, ``BM25Retriever``) from
one copy of the corpus, and persists as one directory.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from haystack import Document, default_from_dict, default_to_dict
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy

from spart.atomic import replace_directory
from spart.bm25 import Tokenizer
from spart.bm25.segments import SegmentedBM25
from spart.components.document_stores.faiss import converters, database, persistence
from spart.components.document_stores.faiss import filters as sql_filters
from spart.components.document_stores.faiss.database import batched, placeholders
from spart.index import DenseIndex
from spart.validation import check_top_k

logger = logging.getLogger(__name__)

_BATCH = 10_000  # rows per SQLite fetch / FAISS add / BM25 segment while rebuilding: bounds memory
_TRAIN_SAMPLE = 100_000  # IVF / PQ quantizers train on at most this many vectors (a random sample)
_PROGRESS_MIN = 50_000  # show a progress bar for rebuilds of at least this many documents

# Open stores by (directory, configuration): from_dict hands out the open instance, so that the retrievers
# of a pipeline loaded from YAML share one store (one connection, one copy of the derived indexes).
_OPEN_STORES: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_OPEN_STORES_LOCK = threading.Lock()


class FaissDocumentStore:
    """Document store with dense (FAISS, inner product) and sparse (BM25) retrieval, durable on every write.

    **Storage.** SQLite is the source of truth: documents, metadata and float32 embeddings (what FAISS
    searches with; a returned embedding equals the written one to float32 precision, a deviation from
    Haystack's in-memory store). With ``path`` the database is a file in WAL mode with ``synchronous=FULL``:
    when ``write_documents``, ``delete_documents``, ``delete_by_filter``, ``update_by_filter`` or
    ``delete_all_documents`` return, the change survives ``kill -9`` and power loss. Each of them is one
    transaction, validated before it starts: a failed or invalid write changes nothing. Text and metadata
    stay on disk (a 64 MiB page cache per connection). ``path=None`` keeps the database in memory.

    **Derived indexes.** The FAISS index (:class:`spart.index.DenseIndex`, ``factory`` x ``embedding_dim``,
    FAISS id = SQLite rowid) and the BM25 index (:class:`spart.bm25.segments.SegmentedBM25` over
    ``meta["title"] + " " + content``) are derived from the database. Every change appends to a change log
    whose sequence number orders all writes; each index remembers the sequence it reflects and is caught up
    from the log before every search (so other processes' writes are seen) and after every write. A write
    costs O(written documents) in both indexes. Documents without an embedding are stored but are not in
    the dense index. Removal from the dense index is native for ``Flat`` and IVF; HNSW hides deleted ids
    until they pass 20% of the graph, PQ rebuilds on every delete (see :class:`DenseIndex`).

    **Checkpoints.** :meth:`save` checkpoints the derived indexes next to the database (with the sequence they
    reflect); opening a store loads the checkpoint and replays the changes made since. Without a checkpoint
    (or with a corrupt one) the indexes are rebuilt from the database. Writes checkpoint by themselves once
    the changes since the last checkpoint exceed half the corpus (and ``AUTO_CHECKPOINT_MIN``), so a reopen
    replays a bounded log. ``save(path=other)`` instead copies the whole store to another directory.
    The BM25 index is memory-mapped from its checkpoint files (postings, document lengths, the sorted
    vocabulary, document frequencies); between checkpoints, large new BM25 segments and vocabularies are
    spilled to a scratch directory under ``index/`` and mapped too, so its private memory is a bit per
    document plus bounded buffers (see :mod:`spart.bm25.segments`). ``Flat`` and HNSW vectors are likewise
    memory-mapped from the checkpoint, on open and once a checkpoint is written; changes since go to a small
    in-memory delta and tombstones, and the next checkpoint hard-links the unchanged vector file and writes only
    the delta (see :class:`~spart.index.DenseIndex`).

    **Filters** (Haystack syntax) are compiled to SQL over the JSON metadata (see :mod:`.filters`);
    ``meta_index`` creates SQLite expression indexes for chosen meta fields. Filtered dense retrieval is exact
    (brute force over the matching documents' stored embeddings), even when the FAISS index is approximate.

    **Processes.** Several processes may open one directory: SQLite serialises writes, every instance catches
    up from the change log before searching. Within a process, :meth:`from_dict` shares one open instance
    per (directory, configuration).

    :param path: Store directory (created if missing), or ``None`` for an in-memory store.
    :param embedding_dim: Dimension of document and query embeddings.
    :param factory: FAISS index factory string (``"Flat"`` exact; ``"HNSW32"``, ``"IVF1024,PQ32"`` ...). IVF
        and PQ train on the first write's embeddings (at most 100k of them, sampled).
    :param nprobe: IVF lists probed per query.
    :param ef_search: HNSW search beam width.
    :param bm25_method: BM25 variant (``lucene`` default, ``okapi``, ``robertson``, ``atire``, ``bm25l``, ``bm25+``).
    :param bm25_k1: BM25 k1.
    :param bm25_b: BM25 b.
    :param bm25_delta: BM25L / BM25+ delta.
    :param bm25_stopwords: ``"en"``, ``None`` or a list of stop words (see :class:`spart.bm25.Tokenizer`).
    :param bm25_stemmer: ``None`` or a PyStemmer language such as ``"english"``.
    :param meta_index: Meta fields (``"meta.year"`` or ``"year"``) to index in SQLite, for fast filters.

    Example::

        store = FaissDocumentStore(path="corpus.store", embedding_dim=384, meta_index=["lang"])
        store.write_documents(docs_with_embeddings)   # durable when it returns
        store.bm25_retrieval("who wrote hamlet", top_k=5)
        store.save()                                  # checkpoint the indexes: fast reopen
    """

    AUTO_CHECKPOINT_MIN = 100_000

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
        meta_index: list[str] | None = None,
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
        self.meta_index = None if meta_index is None else list(meta_index)
        for name in self.meta_index or []:
            sql_filters.meta_field_path(name)  # validates the field name early

        self._lock = threading.RLock()
        self._tokenizer = Tokenizer(stopwords=bm25_stopwords, stemmer=bm25_stemmer)
        self._scratch = None if self.path is None else persistence.ScratchDir(Path(self.path))
        self._new_bm25()  # validates the BM25 method and parameters
        self._dense = self._new_dense()
        self._dense_seq: int | None = 0
        self._bm25_seq: int | None = 0
        self._checkpoint_seq = 0
        self._filter_state: dict[str, Any] = {}
        self._conn = self._open()
        sql_filters.install_udf(self._conn, self._filter_state)
        with self._lock:
            self._sync()
        if self.path is not None:
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
            meta_index=self.meta_index,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaissDocumentStore:
        """Re-create the store from :meth:`to_dict` output (re-opening ``path`` when it is set).

        An in-memory store (``path=None``) serialises its configuration only, so this gives an empty store
        (as with Haystack's InMemoryDocumentStore). For a ``path``, an instance of this process already open
        on the same directory with the same configuration is returned instead of a second one: it is always
        current, because every write is in the database and searches catch up from the change log.
        """
        params = data.get("init_parameters", {})
        if params.get("path") is not None:
            with _OPEN_STORES_LOCK:
                shared = _OPEN_STORES.get(_registry_key(params))
            if shared is not None and shared._conn is not None:
                return shared
        return default_from_dict(cls, data)

    def _registry_key(self) -> tuple[str, str]:
        return _registry_key(self.to_dict()["init_parameters"])

    def close(self) -> None:
        """Close the database connection; the instance is unusable afterwards. Nothing is lost by not calling it."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._scratch is not None:
                self._scratch.close()
            if self.path is not None:
                with _OPEN_STORES_LOCK:
                    if _OPEN_STORES.get(self._registry_key()) is self:
                        del _OPEN_STORES[self._registry_key()]

    # ================================================================== protocol
    def count_documents(self) -> int:
        """Number of stored documents."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def filter_documents(self, filters: dict[str, Any] | None = None) -> list[Document]:
        """Documents matching Haystack ``filters`` (all documents when ``None`` or empty), in write order.

        :param filters: Haystack filter dict (``{"field": "meta.x", "operator": "==", "value": 1}`` or a
            logical ``{"operator": "AND", "conditions": [...]}``).
        :returns: The matching documents, with embeddings.
        :raises FilterError: On a malformed filter.
        """
        compiled = sql_filters.compile_filters(filters)
        with self._lock:
            sql = f"SELECT {converters.select_columns(True)} FROM documents WHERE {{where}} ORDER BY rowid"
            cur = sql_filters.run(self._db, self._filter_state, compiled, sql)
            return [converters.row_to_document(row) for row in sql_filters.fetch(cur, self._filter_state)]

    def write_documents(self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.NONE) -> int:
        """Write documents in one transaction; durable when it returns, nothing written if it raises.

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
        if policy == DuplicatePolicy.NONE:
            policy = DuplicatePolicy.FAIL
        rows = _dedupe_rows(self._rows(documents), policy)
        if not rows:
            return 0
        with self._lock:
            self._sync()
            with database.transaction(self._db) as cur:
                existing = self._existing_rowids(cur, [row[0] for row in rows])
                if policy == DuplicatePolicy.FAIL and existing:
                    raise DuplicateDocumentError(
                        f"{len(existing)} document(s) already exist, e.g. id {next(iter(existing))!r}"
                    )
                if policy == DuplicatePolicy.SKIP and existing:
                    rows = [row for row in rows if row[0] not in existing]
                    if not rows:
                        return 0
                embedded = [row[3] for row in rows if row[3] is not None]
                if embedded and not self._dense.is_trained:
                    # Train before committing, so that a first batch too small to train on changes nothing.
                    self._dense.train(_sample(_blobs_to_matrix(embedded, self.embedding_dim)))
                if existing:  # OVERWRITE: the old row goes, the new one gets a fresh rowid
                    old = sorted(existing.values())
                    cur.executemany("DELETE FROM documents WHERE rowid = ?", [(r,) for r in old])
                    cur.executemany(
                        f"INSERT INTO changes (rowid, op) VALUES (?, {database.OP_REMOVE})", [(r,) for r in old]
                    )
                first = database.last_rowid(cur)
                cur.executemany(converters.INSERT_SQL, rows)
                cur.execute(
                    f"INSERT INTO changes (rowid, op) SELECT rowid, {database.OP_ADD} FROM documents "
                    "WHERE rowid > ? ORDER BY rowid",
                    (first,),
                )
            self._after_write()
            return len(rows)

    def delete_documents(self, document_ids: list[str]) -> None:
        """Delete documents by id in one transaction; unknown ids are ignored.

        :param document_ids: Ids to delete.
        """
        with self._lock:
            with database.transaction(self._db) as cur:
                rowids = sorted(self._existing_rowids(cur, list(document_ids)).values())
                self._delete_rowids(cur, rowids)
            if rowids:
                self._after_write()

    def delete_all_documents(self, recreate_index: bool = False) -> None:
        """Remove every document.

        :param recreate_index: Also forget the dense index's training (IVF / PQ quantizers); by default a
            trained index stays trained.
        """
        op = database.OP_RESET if recreate_index else database.OP_CLEAR
        with self._lock:
            with database.transaction(self._db) as cur:
                cur.execute("DELETE FROM documents")
                cur.execute("INSERT INTO changes (rowid, op) VALUES (0, ?)", (op,))
            self._after_write()

    def count_documents_by_filter(self, filters: dict[str, Any]) -> int:
        """Number of documents matching Haystack ``filters``."""
        compiled = sql_filters.compile_filters(filters)
        with self._lock:
            cur = sql_filters.run(
                self._db, self._filter_state, compiled, "SELECT COUNT(*) FROM documents WHERE {where}"
            )
            return int(sql_filters.fetch(cur, self._filter_state)[0][0])

    def delete_by_filter(self, filters: dict[str, Any]) -> int:
        """Delete the documents matching Haystack ``filters`` in one transaction.

        :returns: Number of documents deleted.
        """
        compiled = sql_filters.compile_filters(filters)
        with self._lock:
            with database.transaction(self._db) as cur:
                found = sql_filters.run(cur, self._filter_state, compiled, "SELECT rowid FROM documents WHERE {where}")
                rowids = sorted(r for (r,) in sql_filters.fetch(found, self._filter_state))
                self._delete_rowids(cur, rowids)
            if rowids:
                self._after_write()
            return len(rowids)

    def update_by_filter(self, filters: dict[str, Any], meta: dict[str, Any]) -> int:
        """Merge ``meta`` into the metadata of the documents matching Haystack ``filters`` (one transaction).

        :returns: Number of documents updated.
        :raises ValueError: If ``meta`` is not a JSON-serialisable dict.
        """
        if not isinstance(meta, dict):
            raise ValueError(f"meta must be a dict, got {type(meta).__name__}")
        try:
            json.dumps(meta)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"meta is not JSON-serialisable: {exc}") from exc
        compiled = sql_filters.compile_filters(filters)
        with self._lock:
            with database.transaction(self._db) as cur:
                found = sql_filters.run(
                    cur, self._filter_state, compiled, "SELECT rowid, meta FROM documents WHERE {where}"
                )
                updates = [
                    (json.dumps({**json.loads(m), **meta}), r) for r, m in sql_filters.fetch(found, self._filter_state)
                ]
                cur.executemany("UPDATE documents SET meta = ? WHERE rowid = ?", updates)
                if "title" in meta:  # the title is part of the BM25 text
                    cur.executemany(
                        f"INSERT INTO changes (rowid, op) VALUES (?, {database.OP_RETEXT})", [(r,) for _, r in updates]
                    )
            if updates and "title" in meta:
                self._after_write()
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
        matching documents' stored embeddings exactly.

        :param query_embedding: ``embedding_dim`` floats.
        :param top_k: Maximum number of documents (> 0).
        :param filters: Optional Haystack filters.
        :param return_embedding: Include document embeddings in the results.
        :returns: Documents sorted by descending ``score`` (the inner product).
        :raises ValueError: On ``top_k <= 0`` or a query embedding of the wrong dimension.
        """
        check_top_k(top_k)
        query = _as_query_vector(query_embedding, self.embedding_dim)
        compiled = sql_filters.compile_filters(filters) if filters else None
        with self._lock:
            if compiled is not None:
                scores, rowids = self._filtered_dense_search(query, top_k, compiled)
            else:
                self._sync()
                # cap k: the index pads results to k, and a huge top_k must not allocate a huge array
                s, i = self._dense.search(query, min(top_k, max(len(self._dense), 1)))
                keep = i[0] != -1
                scores, rowids = s[0][keep], i[0][keep]
            return self._documents_by_rowid(rowids, scores, with_embedding=return_embedding)

    def bm25_retrieval(self, query: str, top_k: int = 10, filters: dict[str, Any] | None = None) -> list[Document]:
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
        compiled = sql_filters.compile_filters(filters) if filters else None
        with self._lock:
            allowed = None
            if compiled is not None:
                cur = sql_filters.run(
                    self._db, self._filter_state, compiled, "SELECT rowid FROM documents WHERE {where} ORDER BY rowid"
                )
                allowed = np.fromiter((r for (r,) in sql_filters.fetch(cur, self._filter_state)), dtype=np.int64)
            self._sync()
            scores, rowids = self._bm25.search(tokens, top_k, allowed=allowed)
            return self._documents_by_rowid(rowids, scores, with_embedding=False)

    # ================================================================== persistence
    def save(self, path: str | os.PathLike | None = None) -> None:
        """Checkpoint the derived indexes, or copy the store to another directory.

        * ``save()`` (or ``save(path)`` naming this store's own directory): writes a checkpoint of the FAISS
          and BM25 indexes with the change sequence they reflect, so that the next open only replays later
          changes. Documents need no saving: every write is durable when it returns.
        * ``save(path)`` for another directory: writes a complete, independent copy of the store there
          (database and checkpoint), replacing what was there atomically. An in-memory store then moves
          there: it continues as a store on ``path`` (as "save as" does), and ``to_dict`` names it.

        :raises ValueError: If the store is in memory and no ``path`` is given, or ``path`` is not a directory.
        """
        target = Path(path) if path is not None else (Path(self.path) if self.path is not None else None)
        if target is None:
            raise ValueError("this FaissDocumentStore is in memory (path=None): pass save(path=...)")
        with self._lock:
            if self.path is not None and os.path.realpath(target) == os.path.realpath(self.path):
                self._checkpoint()
            else:
                self._copy_to(target)
                if self.path is None:
                    self._conn.close()
                    self.path = str(target)
                    self._conn = database.connect(target / persistence.DB_FILE)
                    sql_filters.install_udf(self._conn, self._filter_state)
                    self._scratch = persistence.ScratchDir(target)
                    self._bm25.spill_to = self._scratch.get
                    self._checkpoint_seq = min(self._dense_seq, self._bm25_seq)
                    with _OPEN_STORES_LOCK:
                        _OPEN_STORES[self._registry_key()] = self

    @classmethod
    def load(cls, path: str | os.PathLike, **overrides: Any) -> FaissDocumentStore:
        """Open an existing store with the configuration it was created with.

        :param path: Store directory.
        :param overrides: Settings to use instead of the saved ones (``bm25_method``, ``nprobe`` ...).
        :raises FileNotFoundError: If ``path`` is missing.
        :raises ValueError: If the directory is not a valid store or is corrupt.
        """
        path = Path(path)
        persistence.prepare_directory(path, create=False)
        params = dict(persistence.read_config(path))
        params.update(overrides)
        return cls(path=str(path), **params)

    # ================================================================== internals: opening
    @property
    def _db(self):
        if self._conn is None:
            raise ValueError("this FaissDocumentStore has been closed")
        return self._conn

    def _config(self) -> dict[str, Any]:
        return {k: v for k, v in self.to_dict()["init_parameters"].items() if k != "path"}

    def _new_dense(self) -> DenseIndex:
        return DenseIndex(self.embedding_dim, self.factory, nprobe=self.nprobe, ef_search=self.ef_search)

    def _new_bm25(self) -> SegmentedBM25:
        self._bm25 = SegmentedBM25(
            self.bm25_method,
            self.bm25_k1,
            self.bm25_b,
            self.bm25_delta,
            spill_to=None if self._scratch is None else self._scratch.get,
        )
        return self._bm25

    def _tokenizer_config(self) -> dict[str, Any]:
        return self._tokenizer.to_dict()

    def _open(self):
        if self.path is None:
            conn = database.connect(None)
            with database.transaction(conn) as cur:
                self._init_settings(cur)
            return conn
        directory = Path(self.path)
        persistence.prepare_directory(directory)
        persistence.remove_stale_scratch(directory)
        conn = database.connect(directory / persistence.DB_FILE)
        try:
            with database.transaction(conn) as cur:
                self._init_settings(cur)
            self._load_checkpoint(directory)
        except BaseException:
            conn.close()
            raise
        return conn

    def _init_settings(self, cur) -> None:
        saved = database.get_setting(cur, "config")
        if saved is None:
            database.set_setting(cur, "format_version", persistence.FORMAT_VERSION)
            database.set_setting(cur, "config", self._config())
        else:
            for key in ("embedding_dim", "factory"):
                if saved.get(key) != getattr(self, key):
                    raise ValueError(
                        f"{self.path} holds a store with {key}={saved.get(key)!r}, "
                        f"but this FaissDocumentStore was created with {key}={getattr(self, key)!r}"
                    )
        for name in self.meta_index or []:
            cur.execute(sql_filters.meta_index_sql(name)[1])

    def _load_checkpoint(self, directory: Path) -> None:
        """Load the derived indexes of the current checkpoint; ones that cannot be used are rebuilt later."""
        self._dense_seq = self._bm25_seq = None  # None: rebuild from the database
        found = persistence.read_checkpoint(directory)
        if found is None:
            return
        ckpt, manifest = found
        dense = manifest.get("dense")
        if dense is not None:
            try:
                index = DenseIndex.read_file(ckpt / dense["file"], dense["header"], mmap=True)
                if index.dim != self.embedding_dim or index.factory != self.factory:
                    raise ValueError(f"it holds dim={index.dim} factory={index.factory!r}")
                index.set_search_params(self.nprobe, self.ef_search)
                self._dense, self._dense_seq = index, int(dense["seq"])
            except (OSError, ValueError, KeyError) as exc:
                logger.warning("dense index checkpoint of %s not used (%s); rebuilding it", directory, exc)
        bm25 = manifest.get("bm25")
        if bm25 is not None and bm25.get("tokenizer") == self._tokenizer_config():
            try:
                self._new_bm25().load(ckpt, bm25)
                self._bm25_seq = int(bm25["seq"])
            except (ValueError, KeyError) as exc:
                self._new_bm25()
                logger.warning("BM25 index checkpoint of %s not used (%s); rebuilding it", directory, exc)
        self._checkpoint_seq = min(self._dense_seq or 0, self._bm25_seq or 0)

    # ================================================================== internals: derived indexes
    def _sync(self) -> None:
        """Bring the FAISS and BM25 indexes up to the database's newest change (one read snapshot)."""
        conn = self._db
        with database.transaction(conn, write=False) as cur:
            head = database.last_seq(cur)
            pruned = int(database.get_setting(cur, "pruned_through", 0))
            if self._dense_seq is not None and self._dense_seq < pruned:
                self._dense_seq = None
            if self._bm25_seq is not None and self._bm25_seq < pruned:
                self._bm25_seq = None
            if self._dense_seq == head and self._bm25_seq == head:
                return
            if self._dense_seq is None:
                self._rebuild_dense(cur)
            if self._bm25_seq is None:
                self._rebuild_bm25(cur)
            start = min(
                self._dense_seq if self._dense_seq is not None else head,
                self._bm25_seq if self._bm25_seq is not None else head,
            )
            changes = cur.execute("SELECT seq, rowid, op FROM changes WHERE seq > ? ORDER BY seq", (start,)).fetchall()
            if self._dense_seq < head:
                self._apply_dense(cur, [c for c in changes if c[0] > self._dense_seq])
            if self._bm25_seq < head:
                self._apply_bm25(cur, [c for c in changes if c[0] > self._bm25_seq])
            self._dense_seq = self._bm25_seq = head
        if self.path is None and changes:
            # Nobody else reads an in-memory store's log: keep it from growing.
            with database.transaction(conn) as cur:
                cur.execute("DELETE FROM changes WHERE seq <= ?", (head,))
                database.set_setting(cur, "pruned_through", head)

    @staticmethod
    def _net_changes(changes: list[tuple[int, int, int]], retext: bool) -> tuple[int | None, list[int], list[int]]:
        """(last clear/reset op or None, rowids to remove, rowids to (re-)add) for one index."""
        reset_op = None
        for i in range(len(changes) - 1, -1, -1):
            if changes[i][2] in (database.OP_CLEAR, database.OP_RESET):
                reset_op = changes[i][2]
                changes = changes[i + 1 :]
                break
        removed = [r for _, r, op in changes if op == database.OP_REMOVE or (retext and op == database.OP_RETEXT)]
        added = [r for _, r, op in changes if op == database.OP_ADD or (retext and op == database.OP_RETEXT)]
        return reset_op, removed, sorted(set(added))

    def _apply_dense(self, cur, changes) -> None:
        reset_op, removed, added = self._net_changes(changes, retext=False)
        if reset_op == database.OP_RESET:
            self._dense.reset()
        elif reset_op == database.OP_CLEAR:
            self._dense.clear()
        if removed:
            self._dense.remove(np.asarray(removed, dtype=np.int64))
        for chunk in batched(added, database.SQLITE_MAX_PARAMS):
            rows = cur.execute(
                f"SELECT rowid, embedding FROM documents WHERE rowid IN ({placeholders(len(chunk))}) "
                "AND embedding IS NOT NULL ORDER BY rowid",
                list(chunk),
            ).fetchall()
            if rows:
                self._add_vectors(rows)

    def _add_vectors(self, rows: list[tuple[int, bytes]]) -> None:
        vectors = _blobs_to_matrix([e for _, e in rows], self.embedding_dim)
        if not self._dense.is_trained:
            self._dense.train(_sample(vectors))
        self._dense.add(vectors, np.asarray([r for r, _ in rows], dtype=np.int64))

    def _apply_bm25(self, cur, changes) -> None:
        reset_op, removed, added = self._net_changes(changes, retext=True)
        if reset_op is not None:
            self._bm25.clear()
        if removed:
            self._bm25.remove(removed)
        rowids, texts = [], []
        for chunk in batched(added, database.SQLITE_MAX_PARAMS):
            for rowid, content, meta in cur.execute(
                f"SELECT rowid, content, meta FROM documents WHERE rowid IN ({placeholders(len(chunk))})", list(chunk)
            ):
                rowids.append(rowid)
                texts.append(self._tokenizer(converters.bm25_text(content, meta)))
        self._bm25.add(rowids, texts)

    def _rebuild_dense(self, cur) -> None:
        """Rebuild the FAISS index from every stored embedding (training IVF / PQ on a sample first)."""
        from tqdm.auto import tqdm

        self._dense = self._new_dense() if not self._dense.is_trained else self._dense
        self._dense.clear()
        n = cur.execute("SELECT COUNT(*) FROM documents WHERE embedding IS NOT NULL").fetchone()[0]
        if n and not self._dense.is_trained:
            sample = cur.execute(
                "SELECT embedding FROM documents WHERE embedding IS NOT NULL ORDER BY random() LIMIT ?",
                (_TRAIN_SAMPLE,),
            ).fetchall()
            self._dense.train(np.stack([np.frombuffer(e, dtype="<f4") for (e,) in sample]))
        rows = cur.execute("SELECT rowid, embedding FROM documents WHERE embedding IS NOT NULL ORDER BY rowid")
        with tqdm(total=n, desc="dense index", unit="vector", disable=n < _PROGRESS_MIN) as bar:
            while chunk := rows.fetchmany(_BATCH):
                self._add_vectors(chunk)
                bar.update(len(chunk))
        self._dense_seq = database.last_seq(cur)

    def _rebuild_bm25(self, cur) -> None:
        """Rebuild the BM25 index from every stored document."""
        from tqdm.auto import tqdm

        self._new_bm25()
        n = cur.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        rows = cur.execute("SELECT rowid, content, meta FROM documents ORDER BY rowid")
        with tqdm(total=n, desc="BM25 index", unit="doc", disable=n < _PROGRESS_MIN) as bar:
            while chunk := rows.fetchmany(_BATCH):
                self._bm25.add(
                    [r for r, _, _ in chunk], [self._tokenizer(converters.bm25_text(c, m)) for _, c, m in chunk]
                )
                bar.update(len(chunk))
        self._bm25_seq = database.last_seq(cur)

    def _after_write(self) -> None:
        self._sync()
        if self.path is None:
            return
        pending = min(self._dense_seq, self._bm25_seq) - self._checkpoint_seq
        if pending >= max(self.AUTO_CHECKPOINT_MIN, self._bm25.n_docs // 2):
            self._checkpoint()

    def _checkpoint(self, adopt: bool = True) -> None:
        """Write a checkpoint of the derived indexes; with ``adopt`` BM25 then maps the written files."""
        directory = Path(self.path)
        with persistence.checkpoint_lock(directory):
            self._sync()
            ckpt = persistence.new_checkpoint_dir(directory)
            try:
                header = self._dense.write_file(ckpt / persistence.DENSE_FILE, remap=adopt)
                bm25 = self._bm25.save(ckpt)
                manifest = {
                    "dense": {"seq": self._dense_seq, "file": persistence.DENSE_FILE, "header": header},
                    "bm25": {**bm25, "seq": self._bm25_seq, "tokenizer": self._tokenizer_config()},
                    "documents": self._bm25.n_docs,
                    "vectors": len(self._dense),
                }
                persistence.publish_checkpoint(directory, ckpt, manifest)
            except BaseException:
                shutil.rmtree(ckpt, ignore_errors=True)
                raise
            if adopt:
                self._bm25.adopt(ckpt, bm25)
            covered = min(self._dense_seq, self._bm25_seq)
            with database.transaction(self._db) as cur:
                cur.execute("DELETE FROM changes WHERE seq <= ?", (covered,))
                pruned = int(database.get_setting(cur, "pruned_through", 0))
                database.set_setting(cur, "pruned_through", max(pruned, covered))
            self._checkpoint_seq = covered

    def _copy_to(self, target: Path) -> None:
        if target.exists() and not target.is_dir():
            raise ValueError(f"cannot save the document store to {target}: it exists and is not a directory")
        if target.exists() and any(target.iterdir()):
            persistence.read_config(target)  # refuses to replace a directory that is not a store
        self._sync()
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            os.chmod(staging, 0o755)
            copy = database.connect(staging / persistence.DB_FILE)
            try:
                self._db.backup(copy)
                copy.execute("PRAGMA journal_mode = WAL")
            finally:
                copy.close()
            clone = FaissDocumentStore.__new__(FaissDocumentStore)
            clone.__dict__.update(self.__dict__)
            clone.path = str(staging)
            clone._checkpoint_seq = 0
            clone._conn = database.connect(staging / persistence.DB_FILE)
            try:
                clone._checkpoint(adopt=False)
            finally:
                clone._conn.close()
                clone._conn = None
            replace_directory(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    # ================================================================== internals: validation and rows
    def _rows(self, documents: Any) -> list[tuple]:
        """Validate ``documents`` and turn them into rows of ``converters.INSERT_SQL`` (id first)."""
        if not isinstance(documents, list):
            raise ValueError(f"write_documents expects a list of Documents, got {type(documents).__name__}")
        for i, doc in enumerate(documents):
            if not isinstance(doc, Document):
                raise ValueError(f"write_documents expects Documents; item {i} is a {type(doc).__name__}")
            if not doc.content and doc.embedding is None and doc.blob is None:
                raise ValueError(f"document {doc.id!r} has no content, no embedding and no blob")
        embedded = [doc for doc in documents if doc.embedding is not None]
        blobs = iter(self._embedding_blobs(embedded))
        rows = []
        for doc in documents:
            try:
                meta = json.dumps(doc.meta)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"document {doc.id!r} has meta that is not JSON-serialisable: {exc}") from exc
            rows.append(converters.document_to_row(doc, meta, None if doc.embedding is None else next(blobs)))
        return rows

    def _embedding_blobs(self, documents: list[Document]) -> list[bytes]:
        """The float32 bytes of each document's embedding, checked (dimension, finite values) as one matrix."""
        if not documents:
            return []
        try:
            matrix = np.asarray([doc.embedding for doc in documents], dtype="<f4")
        except (ValueError, TypeError):  # ragged or not numeric: the per-document checks name the culprit
            matrix = None
        if matrix is None or matrix.ndim != 2 or matrix.shape[1] != self.embedding_dim:
            vectors = []
            for doc in documents:
                emb = np.asarray(doc.embedding, dtype="<f4")
                if emb.ndim != 1 or emb.shape[0] != self.embedding_dim:
                    raise ValueError(
                        f"document {doc.id!r} has an embedding of dimension {emb.shape}, "
                        f"but the store's embedding_dim is {self.embedding_dim}"
                    )
                vectors.append(emb)
            matrix = np.stack(vectors)
        finite = np.isfinite(matrix).all(axis=1)
        if not finite.all():
            raise ValueError(f"document {documents[int(np.argmin(finite))].id!r} has NaN or infinite embedding values")
        return [vector.tobytes() for vector in matrix]

    @staticmethod
    def _existing_rowids(cur, ids: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for chunk in batched(ids):
            found.update(
                cur.execute(f"SELECT id, rowid FROM documents WHERE id IN ({placeholders(len(chunk))})", list(chunk))
            )
        return found

    @staticmethod
    def _delete_rowids(cur, rowids: list[int]) -> None:
        cur.executemany("DELETE FROM documents WHERE rowid = ?", [(r,) for r in rowids])
        cur.executemany(f"INSERT INTO changes (rowid, op) VALUES (?, {database.OP_REMOVE})", [(r,) for r in rowids])

    def _documents_by_rowid(
        self, rowids: np.ndarray, scores: np.ndarray | None, with_embedding: bool
    ) -> list[Document]:
        wanted = [int(r) for r in rowids]
        by_rowid: dict[int, tuple] = {}
        for chunk in batched(wanted):
            by_rowid.update(
                (row[0], row)
                for row in self._db.execute(
                    f"SELECT {converters.select_columns(with_embedding)} FROM documents "
                    f"WHERE rowid IN ({placeholders(len(chunk))})",
                    list(chunk),
                )
            )
        return [
            converters.row_to_document(by_rowid[r], score=None if scores is None else float(scores[i]))
            for i, r in enumerate(wanted)
            if r in by_rowid
        ]

    def _filtered_dense_search(self, query: np.ndarray, top_k: int, compiled) -> tuple[np.ndarray, np.ndarray]:
        best_scores = np.zeros(0, dtype=np.float32)
        best_ids = np.zeros(0, dtype=np.int64)
        sql = "SELECT rowid, embedding FROM documents WHERE embedding IS NOT NULL AND ({where})"
        cur = sql_filters.run(self._db, self._filter_state, compiled, sql)
        while True:
            rows = sql_filters.fetch(cur, self._filter_state, _BATCH)
            if not rows:
                break
            ids = np.fromiter((r for r, _ in rows), dtype=np.int64, count=len(rows))
            scores = np.stack([np.frombuffer(e, dtype="<f4") for _, e in rows]) @ query
            best_scores = np.concatenate([best_scores, scores.astype(np.float32)])
            best_ids = np.concatenate([best_ids, ids])
            order = np.lexsort((best_ids, -best_scores.astype(np.float64)))[:top_k]
            best_scores, best_ids = best_scores[order], best_ids[order]
        return best_scores, best_ids


# ====================================================================== helpers
def _registry_key(init_parameters: dict[str, Any]) -> tuple[str, str]:
    defaults = {
        name: p.default
        for name, p in inspect.signature(FaissDocumentStore.__init__).parameters.items()
        if name != "self"
    }
    config = {k: v for k, v in {**defaults, **init_parameters}.items() if k != "path"}
    return os.path.realpath(str(init_parameters["path"])), json.dumps(config, sort_keys=True, default=str)


def _sample(vectors: np.ndarray) -> np.ndarray:
    """At most ``_TRAIN_SAMPLE`` rows of ``vectors``, drawn at random (fixed seed)."""
    if len(vectors) <= _TRAIN_SAMPLE:
        return vectors
    pick = np.random.default_rng(0).choice(len(vectors), _TRAIN_SAMPLE, replace=False)
    return vectors[np.sort(pick)]


def _dedupe_rows(rows: list[tuple], policy: DuplicatePolicy) -> list[tuple]:
    """One row per document id (``row[0]``): FAIL raises on a repeat, SKIP keeps the first, else the last."""
    seen: dict[str, tuple] = {}
    for row in rows:
        if row[0] in seen:
            if policy == DuplicatePolicy.FAIL:
                raise DuplicateDocumentError(f"id {row[0]!r} occurs more than once in this write")
            if policy == DuplicatePolicy.SKIP:
                continue
        seen[row[0]] = row
    return list(seen.values())


def _blobs_to_matrix(blobs: list[bytes], dim: int) -> np.ndarray:
    """Stored embeddings (little-endian float32 blobs) as one ``(len(blobs), dim)`` float32 matrix."""
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dim).astype(np.float32)


def _as_query_vector(query_embedding: Any, dim: int) -> np.ndarray:
    if query_embedding is None:
        raise ValueError("query_embedding is None")
    q = np.asarray(query_embedding, dtype=np.float32)
    if q.ndim != 1 or q.shape[0] != dim:
        raise ValueError(f"query_embedding has shape {q.shape}, but the store's embedding_dim is {dim}")
    if not np.isfinite(q).all():
        raise ValueError("query_embedding contains NaN or infinite values")
    return q
