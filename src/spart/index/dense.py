"""Inner-product search over float32 vectors with int64 ids, FAISS underneath.

One class, :class:`DenseIndex`, used by ``FaissDocumentStore`` for serving and by the ART trainer for its
live, periodically rebuilt index, plus :func:`merge_topk`, which merges per-shard top-k lists into a global
top-k (the sharded search across ranks).

Conventions shared by both:

* Scores are inner products (``METRIC_INNER_PRODUCT``); higher is better.
* Result rows are sorted by descending score, ties broken by ascending id, also at the k-th slot (FAISS
  alone keeps an arbitrary member of a tie there; :meth:`DenseIndex.search` widens the search until the tie
  ends). So sharded search + :func:`merge_topk` gives exactly the lists of one search over all vectors.
* Missing results (fewer than ``k`` vectors) are padded with id ``-1`` and score ``-inf``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from spart.atomic import write_bytes_atomic

_MAGIC = b"SPART-DENSE-INDEX 1\n"

PAD_ID = -1
PAD_SCORE = float("-inf")
_SINGLE_THREAD_MAX_QUERIES = 8  # query batches up to this size are searched on the calling thread only
_TOMBSTONE_MAX_FRACTION = 0.2  # HNSW: rebuild once this share of the stored vectors is deleted
# A memory-mapped Flat / HNSW index takes changes into an in-memory exact delta (and tombstones) until the delta
# holds more than this share of the mapped vectors (at least _DELTA_MIN); then the two are merged in memory.
_DELTA_MAX_FRACTION = 0.1
_DELTA_MIN = 4096
DELTA_SUFFIX = ".delta"  # write_file: the delta's file is the index file's name plus this suffix


def _faiss():
    # FAISS loads lazily so that `import spart.index` stays light.
    import faiss

    return faiss


def _sort_rows(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Sort each row by (-score, id), padding (id -1) last, and keep the first ``k`` columns."""
    scores = np.where(ids == PAD_ID, PAD_SCORE, scores).astype(np.float32, copy=False)
    pad_last = ids == PAD_ID
    # lexsort: last key is primary. Primary: padding flag; then descending score; then ascending id.
    order = np.lexsort((ids, -scores.astype(np.float64), pad_last), axis=-1)
    order = order[:, :k]
    out_scores = np.take_along_axis(scores, order, axis=1)
    out_ids = np.take_along_axis(ids, order, axis=1)
    if out_ids.shape[1] < k:  # fewer candidates than k in total: pad on the right
        extra = k - out_ids.shape[1]
        out_scores = np.pad(out_scores, ((0, 0), (0, extra)), constant_values=PAD_SCORE)
        out_ids = np.pad(out_ids, ((0, 0), (0, extra)), constant_values=PAD_ID)
    return out_scores, out_ids


def merge_topk(
    score_arrays: Sequence[np.ndarray], id_arrays: Sequence[np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-shard top-k results into a global top-k.

    Each shard contributes ``scores[i]`` and ``ids[i]`` of shape ``(n_queries, k_i)`` (``k_i`` may differ per
    shard; ``-1`` ids are padding and are ignored). Ids must be globally unique across shards.

    :param score_arrays: One float array ``(n_queries, k_i)`` per shard.
    :param id_arrays: One int array ``(n_queries, k_i)`` per shard, aligned with ``score_arrays``.
    :param k: Number of results to keep per query; must be > 0.
    :returns: ``(scores, ids)`` of shape ``(n_queries, k)``, float32 / int64, sorted by descending score
        (ties: ascending id), padded with ``-inf`` / ``-1``.
    :raises ValueError: On ``k <= 0``, no shards, or shards whose shapes disagree.

    Example::

        scores, ids = merge_topk([s_rank0, s_rank1], [i_rank0, i_rank1], k=100)
    """
    if k <= 0:
        raise ValueError(f"k must be > 0, got {k}")
    if len(score_arrays) == 0 or len(score_arrays) != len(id_arrays):
        raise ValueError(
            f"merge_topk needs one id array per score array and at least one shard, "
            f"got {len(score_arrays)} score arrays and {len(id_arrays)} id arrays"
        )
    scores = [np.asarray(s, dtype=np.float32) for s in score_arrays]
    ids = [np.asarray(i, dtype=np.int64) for i in id_arrays]
    n_queries = scores[0].shape[0] if scores[0].ndim == 2 else -1
    for shard, (s, i) in enumerate(zip(scores, ids)):
        if s.ndim != 2 or s.shape != i.shape or s.shape[0] != n_queries:
            raise ValueError(
                f"shard {shard}: scores {s.shape} and ids {i.shape} must both be (n_queries={n_queries}, k_shard)"
            )
    return _sort_rows(np.concatenate(scores, axis=1), np.concatenate(ids, axis=1), k)


class DenseIndex:
    """Exact or approximate inner-product search over float32 vectors with int64 ids.

    The FAISS index is chosen by a factory string (``"Flat"`` = exact, ``"HNSW32"``, ``"IVF256,Flat"``,
    ``"IVF256,PQ16"``, ``"PQ16"`` ...), always with ``METRIC_INNER_PRODUCT``. Non-IVF indexes are wrapped
    in ``IndexIDMap2`` so that any int64 id can be used; IVF indexes carry ids natively.

    Training: factories that need it (IVF, PQ) are trained on the first ``add`` (or an explicit
    :meth:`train`); a batch too small to train on raises a ``ValueError`` naming the factory and the count.

    Removal: native ``remove_ids`` where FAISS supports it (Flat, IVF). HNSW cannot remove nodes, so removed
    ids are hidden from search with an ``IDSelectorNot`` (tombstones, saved with the index) until they exceed
    20% of the stored vectors or a removed id is added again; then, as for PQ on every removal, the index is
    rebuilt from the remaining vectors reconstructed from the index (exact for HNSW's flat storage; PQ's
    decoded vectors re-encode to the same codes), keeping the trained quantizer.

    Memory-mapped indexes (:meth:`read_file`) are read-only to FAISS. A mapped ``Flat`` or HNSW index takes
    additions into a small in-memory exact (``Flat``) *delta* and removals as tombstones on the mapped part;
    search merges the two. :meth:`write_file` then writes only the delta (the unchanged mapped file is
    hard-linked), and the two are merged in memory once the delta exceeds 10% of the mapped vectors (at least
    4,096) or the tombstones 20%. Other mapped indexes (PQ) are copied into memory on their first change.

    :param dim: Vector dimension (> 0).
    :param factory: FAISS index factory string.
    :param nprobe: IVF only: lists probed per query (FAISS default 1 when None).
    :param ef_search: HNSW only: search beam width (FAISS default 16 when None).

    Example::

        index = DenseIndex(384, "Flat")
        index.add(vectors, ids=np.arange(len(vectors)))
        scores, ids = index.search(queries, k=10)
        index.save("corpus.index"); index = DenseIndex.load("corpus.index")
    """

    def __init__(self, dim: int, factory: str = "Flat", nprobe: int | None = None, ef_search: int | None = None):
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or dim <= 0:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        if not isinstance(factory, str) or not factory.strip():
            raise ValueError(f"factory must be a non-empty FAISS factory string, got {factory!r}")
        if factory.strip().upper().startswith("IDMAP"):
            raise ValueError(f"factory {factory!r}: DenseIndex manages ids itself; drop the IDMap prefix")
        self.dim = int(dim)
        self.factory = factory
        self.nprobe = nprobe
        self.ef_search = ef_search
        self._index = self._new_index()
        self._next_id = 0
        self._deleted = np.zeros(0, dtype=np.int64)  # sorted tombstoned ids (HNSW only)
        self._mapped = False  # the FAISS index is a read-only memory map of a file (see read_file)
        self._source = None  # with _mapped: the mapped file, kept open (its inode outlives a newer checkpoint)
        self._source_path = None  # with _mapped: the newest path known to name the mapped file
        self._delta = None  # with _mapped (Flat / HNSW): vectors added since, IndexIDMap2(IndexFlatIP)
        self._mapped_ids = None  # with _mapped: the sorted ids stored in the mapped index (read lazily)

    # ---------------------------------------------------------------- construction
    def _new_index(self):
        faiss = _faiss()
        try:
            base = faiss.index_factory(self.dim, self.factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise ValueError(f"invalid FAISS factory string {self.factory!r}: {exc}") from exc
        return self._wrap(base)

    def _wrap(self, base):
        faiss = _faiss()
        if faiss.try_extract_index_ivf(base) is not None:
            index = base  # IVF stores ids itself and supports remove_ids
        else:
            index = faiss.IndexIDMap2(base)
        self._apply_search_params(index)
        return index

    def set_search_params(self, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Change the search-time settings of a built index (``None`` keeps FAISS's current value).

        :param nprobe: IVF only: lists probed per query.
        :param ef_search: HNSW only: search beam width.
        """
        self.nprobe, self.ef_search = nprobe, ef_search
        self._apply_search_params(self._index)

    def _apply_search_params(self, index) -> None:
        faiss = _faiss()
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None and self.nprobe is not None:
            ivf.nprobe = int(self.nprobe)
        if self.ef_search is not None:
            base = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index
            if hasattr(base, "hnsw"):
                base.hnsw.efSearch = int(self.ef_search)

    @property
    def _base(self):
        faiss = _faiss()
        return faiss.downcast_index(self._index.index) if isinstance(self._index, faiss.IndexIDMap2) else self._index

    @property
    def is_trained(self) -> bool:
        """Whether the index can accept vectors (always true for Flat / HNSW)."""
        return bool(self._index.is_trained)

    def __len__(self) -> int:
        return int(self._index.ntotal) - len(self._deleted) + self._delta_size

    @property
    def _delta_size(self) -> int:
        return 0 if self._delta is None else int(self._delta.ntotal)

    @property
    def _flat_storage(self) -> bool:
        """Whether the index is ``Flat`` or HNSW (full vectors, worth mapping and extending by a delta)."""
        faiss = _faiss()
        if not isinstance(self._index, faiss.IndexIDMap2):
            return False
        base = self._base
        return isinstance(base, faiss.IndexFlat) or hasattr(base, "hnsw")

    @property
    def _takes_delta(self) -> bool:
        """Whether changes go to the delta (a mapped Flat / HNSW index) instead of a copy in memory."""
        return self._mapped and self._flat_storage

    def __repr__(self) -> str:
        return f"DenseIndex(dim={self.dim}, factory={self.factory!r}, size={len(self)})"

    # ---------------------------------------------------------------- validation
    def _as_matrix(self, vectors, what: str) -> np.ndarray:
        arr = np.asarray(vectors, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2:
            raise ValueError(f"{what} must be a 2-d array (n, {self.dim}), got shape {arr.shape}")
        if arr.shape[1] != self.dim:
            raise ValueError(f"{what} have dimension {arr.shape[1]}, but the index has dimension {self.dim}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{what} contain NaN or infinite values")
        return np.ascontiguousarray(arr)

    # ---------------------------------------------------------------- training / adding
    def train(self, vectors) -> None:
        """Train the quantizers of an IVF / PQ index on ``vectors``.

        :param vectors: ``(n, dim)`` float array.
        :raises ValueError: If there are too few vectors to train this factory.
        """
        x = self._as_matrix(vectors, "training vectors")
        self._materialize()
        try:
            self._index.train(x)
        except RuntimeError as exc:
            raise ValueError(
                f"FAISS factory {self.factory!r} could not be trained on {len(x)} vectors "
                f"(IVF needs at least nlist, PQ at least 2**nbits, ideally 39x more): {exc}"
            ) from exc

    def add(self, vectors, ids=None) -> np.ndarray:
        """Add vectors; trains the index first if it needs training.

        :param vectors: ``(n, dim)`` (or ``(dim,)``) float array.
        :param ids: ``n`` int64 ids; default: consecutive ids after the largest id added so far.
            Adding an id that is already present is not checked here (the store guarantees uniqueness).
        :returns: The int64 ids of the added vectors.
        :raises ValueError: On wrong dimension, NaN, mismatched id count, or an untrainable first batch.
        """
        x = self._as_matrix(vectors, "vectors")
        if ids is None:
            ids = np.arange(self._next_id, self._next_id + len(x), dtype=np.int64)
        ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))
        if len(ids) != len(x):
            raise ValueError(f"got {len(x)} vectors but {len(ids)} ids")
        if len(x) == 0:
            return ids
        if (ids < 0).any():
            raise ValueError("ids must be >= 0 (-1 is reserved for padding)")
        if self._takes_delta:
            faiss = _faiss()
            if self._delta is None:
                self._delta = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
            # A tombstoned id of the mapped part stays tombstoned there: its new vector lives in the delta.
            self._delta.add_with_ids(x, ids)
            self._next_id = max(self._next_id, int(ids.max()) + 1)
            if self._delta_size > max(_DELTA_MIN, _DELTA_MAX_FRACTION * self._index.ntotal):
                self._materialize()
            return ids
        self._materialize()
        if not self._index.is_trained:
            self.train(x)
        if len(self._deleted) and np.isin(ids, self._deleted).any():
            self._purge_tombstones()  # a tombstoned id is coming back: its old vector must really go
        self._index.add_with_ids(x, ids)
        self._next_id = max(self._next_id, int(ids.max()) + 1)
        return ids

    # ---------------------------------------------------------------- search
    def search(self, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` inner-product search.

        :param queries: ``(n_queries, dim)`` or ``(dim,)`` float array.
        :param k: Results per query (> 0). May exceed ``len(self)``; missing slots are padded.
        :returns: ``(scores, ids)``, shapes ``(n_queries, k)``, float32 / int64; padding is ``-inf`` / ``-1``.
        :raises ValueError: On ``k <= 0`` or a wrong query dimension.
        """
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k <= 0:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        q = self._as_matrix(queries, "query vectors")
        if len(self) == 0 or len(q) == 0:
            return (np.full((len(q), k), PAD_SCORE, dtype=np.float32), np.full((len(q), k), PAD_ID, dtype=np.int64))
        k, n = int(k), len(self)
        out_scores = np.empty((len(q), k), dtype=np.float32)
        out_ids = np.empty((len(q), k), dtype=np.int64)
        rows = np.arange(len(q))
        # FAISS picks an arbitrary member of a tie at the k-th slot. Asking for one more result tells us
        # whether the tie continues past k; if so, widen until it ends so the smallest ids can be chosen.
        k_search = min(k + 1, n)
        while True:
            scores, ids = self._faiss_search(q[rows], k_search)
            ids = ids.astype(np.int64, copy=False)
            if k_search >= n or k_search <= k:
                tied = np.zeros(len(rows), dtype=bool)
            else:
                kth, last = scores[:, k - 1], scores[:, -1]
                tied = (last >= kth) & (ids[:, -1] != PAD_ID)
            done = ~tied
            out_scores[rows[done]], out_ids[rows[done]] = _sort_rows(scores[done], ids[done], k)
            if not tied.any():
                return out_scores, out_ids
            rows = rows[tied]
            k_search = min(2 * k_search, n)

    def _faiss_search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = self._search_one(self._index, q, k, self._search_params())
        if not self._delta_size:
            return scores, ids
        d_scores, d_ids = self._search_one(self._delta, q, min(k, self._delta_size), None)
        return _sort_rows(np.concatenate([scores, d_scores], 1), np.concatenate([ids, d_ids], 1).astype(np.int64), k)

    @staticmethod
    def _search_one(index, q: np.ndarray, k: int, params) -> tuple[np.ndarray, np.ndarray]:
        if len(q) > _SINGLE_THREAD_MAX_QUERIES:
            return index.search(q, k, params=params)
        # A few queries gain little from OpenMP fan-out, and on a shared machine its spinning threads collapse
        # throughput (measured: 15 q/s with 2 threads vs 137 q/s with 1 on 15.5k x 384 Flat, loaded 2-core
        # box). omp_set_num_threads only changes the calling thread's setting, so other threads are unaffected.
        faiss = _faiss()
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return index.search(q, k, params=params)
        finally:
            faiss.omp_set_num_threads(before)

    def _search_params(self):
        if not len(self._deleted):
            return None
        faiss = _faiss()
        if hasattr(self._base, "hnsw"):
            params = faiss.SearchParametersHNSW()
            params.efSearch = self._base.hnsw.efSearch
        else:  # a mapped Flat index with tombstones
            params = faiss.SearchParameters()
        batch = faiss.IDSelectorBatch(self._deleted)
        params.sel = faiss.IDSelectorNot(batch)
        params._keep_alive = (batch, params.sel)  # the C++ objects only hold raw pointers
        return params

    # ---------------------------------------------------------------- removal
    def remove(self, ids) -> int:
        """Remove vectors by id; unknown ids are ignored.

        :param ids: int64 ids to remove.
        :returns: Number of vectors removed.
        """
        faiss = _faiss()
        ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))
        if len(ids) == 0 or len(self) == 0:
            return 0
        if self._takes_delta:
            return self._remove_from_mapped(ids)
        self._materialize()
        try:
            return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))
        except RuntimeError:
            if hasattr(self._base, "hnsw"):
                return self._remove_by_tombstone(ids)
            return self._remove_by_rebuild(ids)

    def _remove_from_mapped(self, ids: np.ndarray) -> int:
        faiss = _faiss()
        removed = int(self._delta.remove_ids(faiss.IDSelectorBatch(ids))) if self._delta_size else 0
        if self._mapped_ids is None:  # the mapped part never changes: its ids are read once
            self._mapped_ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        removed += self._tombstone(self._mapped_ids, ids)
        if self._too_many_tombstones:
            self._materialize()
        return removed

    def _remove_by_tombstone(self, ids: np.ndarray) -> int:
        removed = self._tombstone(_faiss().vector_to_array(self._index.id_map).astype(np.int64), ids)
        if self._too_many_tombstones:
            self._purge_tombstones()
        return removed

    def _tombstone(self, stored: np.ndarray, ids: np.ndarray) -> int:
        """Hide the ``ids`` that are ``stored`` in the FAISS index and not hidden yet; returns how many."""
        new = np.setdiff1d(np.intersect1d(stored, ids), self._deleted)
        self._deleted = np.union1d(self._deleted, new)
        return len(new)

    @property
    def _too_many_tombstones(self) -> bool:
        return len(self._deleted) > _TOMBSTONE_MAX_FRACTION * self._index.ntotal

    def _purge_tombstones(self) -> None:
        deleted, self._deleted = self._deleted, np.zeros(0, dtype=np.int64)
        self._remove_by_rebuild(deleted)

    def _remove_by_rebuild(self, ids: np.ndarray) -> int:
        faiss = _faiss()
        id_map = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        keep = ~np.isin(id_map, ids)
        removed = int((~keep).sum())
        if removed == 0:
            return 0
        vectors = self._base.reconstruct_n(0, len(id_map))[keep]
        base = faiss.clone_index(self._base)
        base.reset()  # keeps the trained quantizer
        index = self._wrap(base)
        if keep.any():
            index.add_with_ids(np.ascontiguousarray(vectors), np.ascontiguousarray(id_map[keep]))
        self._index = index
        return removed

    def clear(self) -> None:
        """Remove every vector but keep the training (IVF / PQ quantizers)."""
        faiss = _faiss()
        if self._takes_delta:  # nothing to keep: start from an empty index rather than copy the mapped one
            self.reset()
            return
        self._materialize()
        base = faiss.clone_index(self._base)
        base.reset()
        self._index = self._wrap(base)
        self._next_id = 0
        self._deleted = np.zeros(0, dtype=np.int64)

    def reset(self) -> None:
        """Remove every vector and forget training (a fresh index of the same factory)."""
        self._release_source()
        self._index = self._new_index()
        self._mapped, self._delta = False, None
        self._next_id = 0
        self._deleted = np.zeros(0, dtype=np.int64)

    # ---------------------------------------------------------------- persistence
    def to_bytes(self) -> bytes:
        """Serialise to bytes (header + FAISS index)."""
        faiss = _faiss()
        self._materialize()  # one FAISS index holds everything
        header = self.header()
        body = faiss.serialize_index(self._index).tobytes()
        return _MAGIC + json.dumps(header).encode() + b"\n" + body

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>") -> DenseIndex:
        """Inverse of :meth:`to_bytes`; ``source`` names the origin in error messages."""
        faiss = _faiss()
        if not data.startswith(_MAGIC):
            raise ValueError(f"{source} is not a spart dense index (bad header)")
        try:
            header_line, body = data[len(_MAGIC) :].split(b"\n", 1)
            header = json.loads(header_line)
            index = faiss.deserialize_index(np.frombuffer(body, dtype=np.uint8))
        except (ValueError, RuntimeError) as exc:
            raise ValueError(f"{source} is corrupt: {exc}") from exc
        if index.d != header["dim"]:
            raise ValueError(f"{source} is corrupt: header says dim {header['dim']}, index has {index.d}")
        return cls._from_header(header, index, mapped=False)

    @classmethod
    def _from_header(cls, header: dict, index, mapped: bool, source=None) -> DenseIndex:
        self = cls.__new__(cls)
        self._source, self._source_path = source, None
        self._delta, self._mapped_ids = None, None
        self.dim, self.factory = int(header["dim"]), header["factory"]
        self.nprobe, self.ef_search = header.get("nprobe"), header.get("ef_search")
        self._next_id = int(header.get("next_id", 0))
        self._deleted = np.asarray(header.get("deleted", []), dtype=np.int64)
        self._index, self._mapped = index, mapped
        self._apply_search_params(index)
        return self

    def header(self) -> dict:
        """What :meth:`read_file` needs besides the FAISS file (JSON-serialisable)."""
        return {
            "dim": self.dim,
            "factory": self.factory,
            "nprobe": self.nprobe,
            "ef_search": self.ef_search,
            "next_id": self._next_id,
            "deleted": self._deleted.tolist(),
        }

    def write_file(self, path: str | os.PathLike, remap: bool = False) -> dict:
        """Write the bare FAISS index to ``path`` atomically (for :meth:`read_file`); returns :meth:`header`.

        A memory-mapped index with a delta writes only what changed: ``path`` becomes a hard link to the
        mapped file (a streamed copy of it when no path names it any more or links are not possible), the
        delta goes to ``path`` + ``.delta`` and the header names it; the tombstones are in the header.

        :param remap: an in-memory ``Flat`` / HNSW index then maps the written file instead of keeping its
            vectors in private memory (``path`` must stay readable or be replaced atomically, as a checkpoint is).
        """
        from spart.atomic import atomic_path

        path = Path(path)
        delta_path = path.with_name(path.name + DELTA_SUFFIX)
        if not self._mapped:
            faiss = _faiss()
            with atomic_path(path) as tmp:
                faiss.write_index(self._index, str(tmp))
            delta_path.unlink(missing_ok=True)  # a stale delta of an earlier write to this path
            if remap and self._flat_storage:
                self._source, self._index = _map_index(path, self.dim)
                self._mapped, self._source_path, self._mapped_ids = True, path, None
                self._apply_search_params(self._index)
            return self.header()
        with atomic_path(path) as tmp:
            self._link_or_copy_source(tmp)
        header = self.header()
        if self._delta_size:
            with atomic_path(delta_path) as tmp:
                _faiss().write_index(self._delta, str(tmp))
            header["delta"] = delta_path.name
        else:
            delta_path.unlink(missing_ok=True)
        self._source_path = path
        return header

    def _link_or_copy_source(self, target: Path) -> None:
        """Make ``target`` (an existing empty file) hold the mapped file: a hard link when a path still names
        that very file, else a copy streamed from the kept handle."""
        source = os.fstat(self._source.fileno())
        try:
            known = os.stat(self._source_path) if self._source_path is not None else None
            if known is None or (known.st_dev, known.st_ino) != (source.st_dev, source.st_ino):
                raise FileNotFoundError("the mapped file has no known path any more")
            target.unlink()
            os.link(self._source_path, target)
        except OSError:
            self._source.seek(0)
            with open(target, "wb") as out:
                shutil.copyfileobj(self._source, out, 1 << 24)

    @classmethod
    def read_file(cls, path: str | os.PathLike, header: dict, mmap: bool = True) -> DenseIndex:
        """Load a file written by :meth:`write_file`, memory-mapped where FAISS allows it.

        With ``mmap``, the vectors / codes of ``Flat``, HNSW and PQ indexes stay in the page cache (shared
        between processes; IVF indexes are read into memory). Changes to a mapped ``Flat`` / HNSW index go to an
        in-memory delta (see the class docstring); other mapped indexes are copied into memory on their first
        change, because FAISS cannot modify a mapped index.

        :raises ValueError: If the file (or its delta) is missing, not a FAISS index, or does not match ``header``.
        """
        path = Path(path)
        # Flat / HNSW / PQ code arrays map with IO_FLAG_MMAP_IFC. FAISS maps IVF lists only as files it
        # later reopens by name (which a newer checkpoint may delete), so IVF is read into memory: with PQ
        # its codes are small.
        mmap = mmap and not str(header["factory"]).strip().upper().startswith("IVF")
        dim = header["dim"]
        source, index = _map_index(path, dim) if mmap else (None, _read_index(path, 0, dim))
        try:
            delta = _read_index(path.with_name(header["delta"]), 0, dim) if header.get("delta") else None
        except BaseException:
            if source is not None:
                source.close()
            raise
        self = cls._from_header(header, index, mapped=bool(mmap), source=source)
        self._source_path = path if mmap else None
        if self._takes_delta:
            self._delta = delta
        elif delta is not None or (len(self._deleted) and not hasattr(self._base, "hnsw")):
            # read into memory (mmap=False): the delta and the mapped part's tombstones are folded in
            deleted, self._deleted = self._deleted, np.zeros(0, dtype=np.int64)
            self._fold_in(deleted, delta)
        return self

    def _materialize(self) -> None:
        """Replace a memory-mapped FAISS index by an in-memory copy before it is modified, folding in the
        tombstones and the delta.

        The copy is streamed from the file the index was mapped from (one copy in memory; serialising the
        mapped index and deserialising that would hold two more copies of its size at the peak)."""
        if not self._mapped:
            return
        faiss = _faiss()
        self._source.seek(0)
        self._index = faiss.read_index(faiss.PyCallbackIOReader(self._source.read, 1 << 24))
        self._mapped, self._mapped_ids = False, None
        self._release_source()
        self._apply_search_params(self._index)
        deleted, self._deleted = self._deleted, np.zeros(0, dtype=np.int64)
        delta, self._delta = self._delta, None
        self._fold_in(deleted, delta)

    def _fold_in(self, deleted: np.ndarray, delta) -> None:
        """Apply removals of ``deleted`` and then the additions in ``delta`` to the in-memory index."""
        if len(deleted):
            self.remove(deleted)
        if delta is not None and delta.ntotal:
            faiss = _faiss()
            ids = faiss.vector_to_array(delta.id_map).astype(np.int64)
            self.add(faiss.downcast_index(delta.index).reconstruct_n(0, delta.ntotal), ids)

    def _release_source(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None
        self._source_path = None

    def save(self, path: str | os.PathLike) -> None:
        """Write the index to ``path`` atomically (temp file in the same directory, then ``os.replace``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike) -> DenseIndex:
        """Load an index written by :meth:`save`.

        :raises FileNotFoundError: If ``path`` does not exist.
        :raises ValueError: If the file is not a valid index.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"dense index file not found: {path}")
        return cls.from_bytes(path.read_bytes(), source=str(path))


def _map_index(path: Path, dim: int):
    """``(open file, FAISS index memory-mapped from it)``. The file is opened before FAISS maps it and kept open:
    a copy made later (first change, write_file) is read from this very file even if a newer checkpoint has
    replaced the path since."""
    try:
        source = open(path, "rb")  # noqa: SIM115 (kept open while the index is mapped)
    except OSError as exc:
        raise ValueError(f"{path} is not a readable FAISS index: {exc}") from exc
    try:
        return source, _read_index(path, _faiss().IO_FLAG_MMAP_IFC, dim)
    except BaseException:
        source.close()
        raise


def _read_index(path: Path, flags: int, dim: int):
    try:
        index = _faiss().read_index(str(path), flags)
    except RuntimeError as exc:
        raise ValueError(f"{path} is not a readable FAISS index: {exc}") from exc
    if index.d != dim:
        raise ValueError(f"{path} is corrupt: header says dim {dim}, index has {index.d}")
    return index
