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
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from spart.atomic import write_bytes_atomic

_MAGIC = b"SPART-DENSE-INDEX 1\n"

PAD_ID = -1
PAD_SCORE = float("-inf")
_SINGLE_THREAD_MAX_QUERIES = 8  # query batches up to this size are searched on the calling thread only
_TOMBSTONE_MAX_FRACTION = 0.2  # HNSW: rebuild once this share of the stored vectors is deleted


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
        return int(self._index.ntotal) - len(self._deleted)

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
        params = self._search_params()
        if len(q) > _SINGLE_THREAD_MAX_QUERIES:
            return self._index.search(q, k, params=params)
        # A few queries gain little from OpenMP fan-out, and on a shared machine its spinning threads collapse
        # throughput (measured: 15 q/s with 2 threads vs 137 q/s with 1 on 15.5k x 384 Flat, loaded 2-core
        # box). omp_set_num_threads only changes the calling thread's setting, so other threads are unaffected.
        faiss = _faiss()
        before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return self._index.search(q, k, params=params)
        finally:
            faiss.omp_set_num_threads(before)

    def _search_params(self):
        if not len(self._deleted):
            return None
        faiss = _faiss()
        params = faiss.SearchParametersHNSW()
        params.efSearch = self._base.hnsw.efSearch
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
        self._materialize()
        try:
            return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))
        except RuntimeError:
            if hasattr(self._base, "hnsw"):
                return self._remove_by_tombstone(ids)
            return self._remove_by_rebuild(ids)

    def _remove_by_tombstone(self, ids: np.ndarray) -> int:
        faiss = _faiss()
        stored = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        new = np.setdiff1d(np.intersect1d(stored, ids), self._deleted)
        self._deleted = np.union1d(self._deleted, new)
        if len(self._deleted) > _TOMBSTONE_MAX_FRACTION * self._index.ntotal:
            self._purge_tombstones()
        return len(new)

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
        self._mapped = False
        self._next_id = 0
        self._deleted = np.zeros(0, dtype=np.int64)

    # ---------------------------------------------------------------- persistence
    def to_bytes(self) -> bytes:
        """Serialise to bytes (header + FAISS index)."""
        faiss = _faiss()
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
        self._source = source
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

    def write_file(self, path: str | os.PathLike) -> dict:
        """Write the bare FAISS index to ``path`` atomically (for :meth:`read_file`); returns :meth:`header`."""
        from spart.atomic import atomic_path

        with atomic_path(path) as tmp:
            _faiss().write_index(self._index, str(tmp))
        return self.header()

    @classmethod
    def read_file(cls, path: str | os.PathLike, header: dict, mmap: bool = True) -> DenseIndex:
        """Load a file written by :meth:`write_file`, memory-mapped where FAISS allows it.

        With ``mmap``, the vectors / codes of ``Flat``, HNSW and PQ indexes stay in the page cache (shared
        between processes; IVF indexes are read into memory); the first change (add, remove, clear, train)
        copies the index into memory, because FAISS cannot modify a mapped index.

        :raises ValueError: If the file is missing, not a FAISS index, or does not match ``header``.
        """
        faiss = _faiss()
        # Flat / HNSW / PQ code arrays map with IO_FLAG_MMAP_IFC. FAISS maps IVF lists only as files it
        # later reopens by name (which a newer checkpoint may delete), so IVF is read into memory: with PQ
        # its codes are small.
        mmap = mmap and not str(header["factory"]).strip().upper().startswith("IVF")
        flags = faiss.IO_FLAG_MMAP_IFC if mmap else 0
        # Opened before FAISS maps it: the copy made on the first change is read from this very file even
        # if a newer checkpoint has replaced the path since.
        try:
            source = open(path, "rb") if mmap else None  # noqa: SIM115 (kept open until the first change)
        except OSError as exc:
            raise ValueError(f"{path} is not a readable FAISS index: {exc}") from exc
        try:
            try:
                index = faiss.read_index(str(path), flags)
            except RuntimeError as exc:
                raise ValueError(f"{path} is not a readable FAISS index: {exc}") from exc
            if index.d != header["dim"]:
                raise ValueError(f"{path} is corrupt: header says dim {header['dim']}, index has {index.d}")
        except BaseException:
            if source is not None:
                source.close()
            raise
        return cls._from_header(header, index, mapped=bool(mmap), source=source)

    def _materialize(self) -> None:
        """Replace a memory-mapped FAISS index by an in-memory copy before it is modified.

        The copy is streamed from the file the index was mapped from (one copy in memory; serialising the
        mapped index and deserialising that would hold two more copies of its size at the peak)."""
        if not self._mapped:
            return
        faiss = _faiss()
        self._source.seek(0)
        self._index = faiss.read_index(faiss.PyCallbackIOReader(self._source.read, 1 << 24))
        self._mapped = False
        self._release_source()
        self._apply_search_params(self._index)

    def _release_source(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None

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
