"""Incremental BM25: immutable segments of postings, per-document live masks, and exact global statistics.

:class:`SegmentedBM25` indexes documents keyed by int64 ids (the document store's rowids). A write adds one
small segment built from the written documents only; a delete clears bits in the live masks of the segments
that hold the ids. Segments are merged in tiers (when ``MERGE_FACTOR`` segments of the same size tier
exist, they are rewritten as one, dropping deleted documents), so each document is rewritten O(log N)
times over its life and a write costs O(changed documents) amortised.

Scores are computed at query time from the postings and the *global* statistics -- number of live
documents ``N``, their total length (``avgdl``) and per-term document frequencies ``df`` -- which are updated
exactly by every add and delete. They therefore equal those of :class:`spart.bm25.BM25Index` built from
scratch over the live documents, for every variant of :mod:`spart.bm25.scoring` (to rounding).

A segment holds doc-major arrays (each document's distinct terms and their frequencies: needed to update
``df`` when it is deleted and to merge) and term-major postings (for queries). Saved segments are ``.npy``
files that are memory-mapped on load; they are immutable, so a checkpoint links unchanged ones instead of
copying them.

Memory: what stays in RAM is a bit per document (the live masks), the terms added since the vocabulary was
last saved (see :mod:`spart.bm25.vocabulary`) and segments not yet saved. After :meth:`SegmentedBM25.save`,
:meth:`SegmentedBM25.adopt` maps the written files in place of the in-memory arrays. With ``spill_to`` (a
scratch directory), segments of ``SPILL_BYTES`` or more and vocabularies with ``SPILL_TERMS`` new terms are
written there and mapped at once, so memory stays bounded between saves too (e.g. while indexing a whole
corpus).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Sequence
from itertools import chain
from pathlib import Path

import numpy as np

from spart.bm25.scoring import get_variant, okapi_floor, okapi_raw_idf
from spart.bm25.vocabulary import Vocabulary

MERGE_FACTOR = 4  # segments per size tier before they are merged into one
SPILL_BYTES = 16 << 20  # with a scratch directory, segments this large are written there and mapped
SPILL_TERMS = 250_000  # ... and so is the vocabulary, once it has this many new terms (and 1/8 of its size)
SPARSE_FRACTION = 4  # a query scores a segment sparsely when its postings are < 1/4 of the documents
_ARRAYS = ("rowids", "lengths", "doc_indptr", "doc_terms", "doc_tf", "terms", "term_indptr", "post_docs", "post_tf")


def _tier(n_docs: int) -> int:
    return int(np.log(max(n_docs, 1)) / np.log(MERGE_FACTOR))


class Segment:
    """An immutable set of documents (sorted by id) plus a mutable live mask."""

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        live: np.ndarray | None = None,
        uid: str | None = None,
        file_prefix: Path | None = None,
    ):
        for name in _ARRAYS:
            setattr(self, name, arrays[name])
        self.uid = uid or uuid.uuid4().hex[:16]
        self.file_prefix = file_prefix  # where the arrays are saved (None: only in memory)
        self.live = np.ones(len(self.rowids), dtype=bool) if live is None else np.array(live, dtype=bool)
        self.n_live = int(self.live.sum())
        self.live_length = int(np.asarray(self.lengths, dtype=np.int64)[self.live].sum())

    # ---------------------------------------------------------------- construction
    @classmethod
    def build(cls, rowids: np.ndarray, lengths: np.ndarray, doc: np.ndarray, term: np.ndarray) -> Segment:
        """A segment from token occurrences: document ``doc[i]`` (a position in ``rowids``) holds ``term[i]``.

        ``rowids`` must be sorted ascending and unique.
        """
        n_terms = int(term.max()) + 1 if len(term) else 1
        keys, tf = np.unique(doc.astype(np.int64) * n_terms + term.astype(np.int64), return_counts=True)
        return cls._from_pairs(rowids, lengths, keys // n_terms, keys % n_terms, tf, doc_sorted=True)

    @classmethod
    def merge(cls, segments: Sequence[Segment]) -> Segment:
        """One segment with the live documents of ``segments`` (a rowid live in two segments is an error)."""
        rowids, lengths, docs, terms, tfs = [], [], [], [], []
        offset = 0
        for seg in segments:
            keep = np.flatnonzero(seg.live)
            starts, ends = np.asarray(seg.doc_indptr[keep]), np.asarray(seg.doc_indptr[keep + 1])
            counts = ends - starts
            idx = np.repeat(starts - np.cumsum(np.concatenate([[0], counts[:-1]])), counts) + np.arange(counts.sum())
            rowids.append(np.asarray(seg.rowids[keep]))
            lengths.append(np.asarray(seg.lengths[keep]))
            docs.append(np.repeat(np.arange(len(keep), dtype=np.int64) + offset, counts))
            terms.append(np.asarray(seg.doc_terms[idx]))
            tfs.append(np.asarray(seg.doc_tf[idx]))
            offset += len(keep)
        rowids_all = np.concatenate(rowids) if rowids else np.zeros(0, np.int64)
        order = np.argsort(rowids_all, kind="stable")
        if len(rowids_all) > 1 and (np.diff(rowids_all[order]) == 0).any():
            raise ValueError("BM25 segments hold the same live document twice")
        position = np.empty_like(order)
        position[order] = np.arange(len(order))
        doc = position[np.concatenate(docs)] if docs else np.zeros(0, np.int64)
        term = np.concatenate(terms) if terms else np.zeros(0, np.int64)
        tf = np.concatenate(tfs) if tfs else np.zeros(0, np.int64)
        return cls._from_pairs(
            rowids_all[order], np.concatenate(lengths)[order] if lengths else np.zeros(0, np.int32), doc, term, tf
        )

    @classmethod
    def _from_pairs(cls, rowids, lengths, doc, term, tf, doc_sorted: bool = False) -> Segment:
        """A segment from (document, term, frequency) triples; ``doc_sorted``: already sorted by (doc, term)."""
        n_docs = len(rowids)
        if doc_sorted:
            pair_doc, pair_term, pair_tf = doc, term, tf
        else:
            order = np.lexsort((term, doc))
            pair_doc, pair_term, pair_tf = doc[order], term[order], tf[order]
        doc_indptr = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(np.bincount(pair_doc, minlength=n_docs), out=doc_indptr[1:])
        # term-major order, documents ascending within a term: a stable sort of the doc-sorted pairs by term
        t_order = np.argsort(pair_term, kind="stable")
        by_term = pair_term[t_order]
        starts = np.flatnonzero(np.concatenate([[True], by_term[1:] != by_term[:-1]])) if len(by_term) else by_term
        terms = by_term[starts]
        term_indptr = np.append(starts, len(by_term)).astype(np.int64)
        return cls(
            {
                "rowids": np.asarray(rowids, dtype=np.int64),
                "lengths": np.asarray(lengths, dtype=np.int32),
                "doc_indptr": doc_indptr,
                "doc_terms": pair_term.astype(np.int32),
                "doc_tf": pair_tf.astype(np.int32),
                "terms": terms.astype(np.int32),
                "term_indptr": term_indptr,
                "post_docs": pair_doc[t_order].astype(np.int32),
                "post_tf": pair_tf[t_order].astype(np.int32),
            }
        )

    def __len__(self) -> int:
        return len(self.rowids)

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays (in memory, or mapped)."""
        return sum(getattr(self, name).nbytes for name in _ARRAYS)

    # ---------------------------------------------------------------- access
    def postings(self, term_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(local document positions, term frequencies) of ``term_id`` (dead documents included)."""
        i = int(np.searchsorted(self.terms, term_id))
        if i == len(self.terms) or self.terms[i] != term_id:
            return np.zeros(0, np.int32), np.zeros(0, np.int32)
        start, end = self.term_indptr[i], self.term_indptr[i + 1]
        return np.asarray(self.post_docs[start:end]), np.asarray(self.post_tf[start:end])

    def kill(self, rowids: np.ndarray) -> np.ndarray:
        """Mark the live documents among ``rowids`` (sorted, unique) dead; returns their local positions."""
        pos = np.searchsorted(self.rowids, rowids)
        inside = pos < len(self.rowids)
        pos, ids = pos[inside], rowids[inside]
        hit = pos[np.asarray(self.rowids[pos]) == ids]
        hit = hit[self.live[hit]]
        if len(hit):
            self.live[hit] = False
            self.n_live -= len(hit)
            self.live_length -= int(np.asarray(self.lengths[hit], dtype=np.int64).sum())
        return hit

    def doc_terms_of(self, positions: np.ndarray) -> np.ndarray:
        """Distinct term ids of the documents at ``positions`` (one entry per document and term)."""
        if len(positions) == 0:
            return np.zeros(0, np.int64)
        starts, ends = np.asarray(self.doc_indptr[positions]), np.asarray(self.doc_indptr[positions + 1])
        counts = ends - starts
        idx = np.repeat(starts - np.cumsum(np.concatenate([[0], counts[:-1]])), counts) + np.arange(counts.sum())
        return np.asarray(self.doc_terms[idx], dtype=np.int64)

    # ---------------------------------------------------------------- files
    def save(self, directory: Path) -> str:
        """Write (or hard-link, if already saved elsewhere) the arrays into ``directory``; returns the uid."""
        for name in _ARRAYS:
            target = directory / f"seg-{self.uid}.{name}.npy"
            source = None if self.file_prefix is None else Path(f"{self.file_prefix}.{name}.npy")
            if source is not None and source.is_file():
                try:
                    os.link(source, target)
                    continue
                except OSError:
                    pass
            with open(target, "wb") as fh:
                np.save(fh, np.asarray(getattr(self, name)), allow_pickle=False)
                fh.flush()
                os.fsync(fh.fileno())
        return self.uid

    def map(self, directory: Path) -> None:
        """Replace the arrays by memory maps of the files :meth:`save` wrote into ``directory``."""
        prefix = directory / f"seg-{self.uid}"
        for name in _ARRAYS:
            setattr(self, name, np.load(f"{prefix}.{name}.npy", mmap_mode="r", allow_pickle=False))
        self.file_prefix = prefix

    def files(self) -> list[Path]:
        """The files this segment is mapped from (empty when it is only in memory)."""
        return [] if self.file_prefix is None else [Path(f"{self.file_prefix}.{name}.npy") for name in _ARRAYS]

    @classmethod
    def load(cls, directory: Path, uid: str, live: np.ndarray | None, mmap: bool = True) -> Segment:
        prefix = directory / f"seg-{uid}"
        arrays = {
            name: np.load(f"{prefix}.{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
            for name in _ARRAYS
        }
        if live is not None and len(live) != len(arrays["rowids"]):
            raise ValueError(f"segment {uid}: live mask has {len(live)} entries for {len(arrays['rowids'])} documents")
        return cls(arrays, live=live, uid=uid, file_prefix=prefix)


class SegmentedBM25:
    """BM25 over documents keyed by int64 ids, with O(changed documents) adds and deletes.

    :param method: Scoring variant (see :mod:`spart.bm25.scoring`).
    :param k1: Term-frequency saturation.
    :param b: Length normalisation.
    :param delta: BM25L / BM25+ lower bound.
    :param epsilon: ``okapi``: negative idfs become ``epsilon`` * mean idf.
    :param spill_to: Optional callable returning a private scratch directory (or ``None``): large new
        segments and vocabularies are written there and memory-mapped; files there that are no longer
        used are deleted.

    Example::

        index = SegmentedBM25("okapi")
        index.add([7, 9], [["quick", "fox"], ["lazy", "dog"]])
        index.remove([7])
        scores, ids = index.search(["fox", "dog"], k=5)
    """

    def __init__(
        self,
        method: str = "lucene",
        k1: float = 1.5,
        b: float = 0.75,
        delta: float = 0.5,
        epsilon: float = 0.25,
        spill_to: Callable[[], Path | None] | None = None,
    ):
        self.variant = get_variant(method)
        if k1 < 0 or not 0 <= b <= 1 or delta < 0:
            raise ValueError(f"BM25 needs k1 >= 0, 0 <= b <= 1, delta >= 0; got k1={k1}, b={b}, delta={delta}")
        self.method, self.k1, self.b, self.delta, self.epsilon = method, k1, b, delta, epsilon
        self.spill_to = spill_to
        self._spill_dir: Path | None = None
        self.vocab = Vocabulary()
        self.segments: list[Segment] = []
        self._okapi_floor: tuple[int, float] | None = None  # (version, floor) cache
        self._version = 0

    # ---------------------------------------------------------------- statistics
    @property
    def n_docs(self) -> int:
        """Number of live documents."""
        return sum(s.n_live for s in self.segments)

    @property
    def total_length(self) -> int:
        return sum(s.live_length for s in self.segments)

    def __len__(self) -> int:
        return self.n_docs

    # ---------------------------------------------------------------- changes
    def add(self, rowids: Sequence[int], documents: Sequence[Sequence[str]]) -> None:
        """Index tokenized documents under ``rowids`` (ids must not be live already).

        :param rowids: One int id per document.
        :param documents: One token list per document.
        """
        rowids = np.asarray(rowids, dtype=np.int64)
        if len(rowids) != len(documents):
            raise ValueError(f"got {len(rowids)} ids for {len(documents)} documents")
        if len(rowids) == 0:
            return
        if len(np.unique(rowids)) != len(rowids):
            raise ValueError("BM25 add: duplicate ids in one batch")
        order = np.argsort(rowids, kind="stable")
        docs = [documents[i] for i in order]
        lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
        term = self.vocab.add(list(chain.from_iterable(docs)))
        doc = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
        segment = Segment.build(rowids[order], lengths, doc, term)
        self.vocab.count(segment.doc_terms_of(np.arange(len(segment))), +1)
        self._spill(segment)
        self.segments.append(segment)
        self._version += 1
        self._merge_tiers()
        if self.vocab.n_new >= max(SPILL_TERMS, len(self.vocab) // 8):
            directory = self._spill_directory()
            if directory is not None:
                old = self._owned(self.vocab.files())
                self.vocab.adopt(directory, self.vocab.save(directory))
                _unlink(old)

    def remove(self, rowids: Sequence[int]) -> int:
        """Delete documents by id; unknown or already deleted ids are ignored. Returns how many were live."""
        rowids = np.unique(np.asarray(rowids, dtype=np.int64))
        removed = 0
        if len(rowids) == 0:
            return 0
        for seg in self.segments:
            hit = seg.kill(rowids)
            if len(hit):
                self.vocab.count(seg.doc_terms_of(hit), -1)
                removed += len(hit)
        if removed:
            self._drop([s for s in self.segments if s.n_live == 0])
            self._version += 1
        return removed

    def clear(self) -> None:
        """Forget every document and term."""
        self._drop(self.segments)
        _unlink(self._owned(self.vocab.files()))
        self.vocab = Vocabulary()
        self._version += 1

    def _drop(self, segments: Sequence[Segment]) -> None:
        """Remove ``segments`` from the index, deleting their spilled files."""
        self.segments = [s for s in self.segments if all(s is not d for d in segments)]
        for seg in segments:
            _unlink(self._owned(seg.files()))

    def _spill_directory(self) -> Path | None:
        if self.spill_to is not None:
            self._spill_dir = self.spill_to()
        return self._spill_dir if self.spill_to is not None else None

    def _owned(self, files: list[Path]) -> list[Path]:
        """The ones of ``files`` in the scratch directory (this index's to delete)."""
        return [f for f in files if self._spill_dir is not None and f.parent == self._spill_dir]

    def _spill(self, segment: Segment) -> None:
        if segment.file_prefix is None and segment.nbytes >= SPILL_BYTES:
            directory = self._spill_directory()
            if directory is not None:
                segment.save(directory)
                segment.map(directory)

    def _merge_tiers(self) -> None:
        while True:
            tiers: dict[int, list[Segment]] = {}
            for seg in self.segments:
                tiers.setdefault(_tier(seg.n_live), []).append(seg)
            full = [group for group in tiers.values() if len(group) >= MERGE_FACTOR]
            if not full:
                return
            group = full[0]
            merged = Segment.merge(group)
            self._spill(merged)
            self._drop(group)
            self.segments.append(merged)

    def compact(self) -> None:
        """Merge every segment into one (drops deleted documents)."""
        if len(self.segments) > 1 or (self.segments and self.segments[0].n_live < len(self.segments[0])):
            merged = Segment.merge(self.segments)
            self._spill(merged)
            self._drop(self.segments)
            self.segments = [merged]

    # ---------------------------------------------------------------- scoring
    def _idf(self, df: np.ndarray, n_docs: int) -> np.ndarray:
        idf = np.zeros(len(df), dtype=np.float64)
        present = df > 0
        if self.method == "okapi":
            # rank-bm25's floor depends on the mean idf over every term in the corpus: cached per version.
            if self._okapi_floor is None or self._okapi_floor[0] != self._version:
                every = self.vocab.all_df()
                floor = okapi_floor(okapi_raw_idf(every[every > 0], n_docs), self.epsilon)
                self._okapi_floor = (self._version, floor)
            raw = okapi_raw_idf(df[present], n_docs)
            idf[present] = np.where(raw < 0, self._okapi_floor[1], raw)
        elif present.any():
            idf[present] = self.variant.idf(df[present], n_docs, epsilon=self.epsilon)
        return idf

    def search(
        self, query_tokens: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` documents containing at least one query token.

        :param query_tokens: Tokenized query (repeated tokens count repeatedly, as in bm25s).
        :param k: Maximum number of results (> 0).
        :param allowed: Optional sorted int64 ids; other documents are never returned.
        :returns: ``(scores, ids)`` sorted by descending score, ties by ascending id; may be shorter than ``k``.
        """
        if k <= 0:
            raise ValueError(f"k must be > 0, got {k}")
        empty = np.zeros(0, np.float64), np.zeros(0, np.int64)
        query = self.vocab.lookup(list(query_tokens))
        query = query[query >= 0]
        n_docs = self.n_docs
        if not len(query) or n_docs == 0:
            return empty
        uniq, mult = np.unique(query, return_counts=True)
        df = self.vocab.df(uniq)
        idf = self._idf(df, n_docs)
        live_terms = idf != 0
        total = self.total_length
        avg = total / n_docs if total else 1.0
        v, k1, b, delta = self.variant, self.k1, self.b, self.delta
        absent = np.zeros(len(uniq))
        if v.scores_absent_terms:
            absent = idf * v.tfc(np.zeros(1), avg, avg, k1, b, delta)[0]
        base = float((mult * absent).sum())
        out_scores, out_ids = [], []
        for seg in self.segments:
            # per query term: (local documents, their score contribution); 0 for terms that only match
            postings = []
            for j, t in enumerate(uniq):
                if df[j] == 0:
                    continue
                docs, tf = seg.postings(int(t))
                if len(docs) == 0:
                    continue
                if live_terms[j] or v.scores_absent_terms:
                    contrib = mult[j] * (idf[j] * v.tfc(tf, seg.lengths[docs], avg, k1, b, delta) - absent[j])
                else:
                    contrib = np.zeros(len(docs))
                postings.append((docs, contrib))
            if not postings:
                continue
            cand, summed = _accumulate(postings, len(seg))
            keep = seg.live[cand]
            if allowed is not None:
                keep &= np.isin(np.asarray(seg.rowids[cand]), allowed)
            cand, summed = cand[keep], summed[keep]
            if len(cand):
                out_scores.append(summed + base)
                out_ids.append(np.asarray(seg.rowids[cand]))
        if not out_ids:
            return empty
        scores, ids = np.concatenate(out_scores), np.concatenate(out_ids)
        if len(ids) > k:
            kth = np.partition(scores, len(scores) - k)[len(scores) - k]
            keep = scores >= kth
            scores, ids = scores[keep], ids[keep]
        order = np.lexsort((ids, -scores))[:k]
        return scores[order], ids[order]

    # ---------------------------------------------------------------- persistence
    def save(self, directory: Path) -> dict:
        """Write the segments, live masks and vocabulary into ``directory``; returns the manifest to keep.

        The index itself is unchanged: call :meth:`adopt` to map the written files instead of holding the
        arrays in memory.
        """
        directory.mkdir(parents=True, exist_ok=True)
        segments = []
        for seg in self.segments:
            seg.save(directory)
            live_file = f"live-{seg.uid}.npy"
            with open(directory / live_file, "wb") as fh:
                np.save(fh, seg.live, allow_pickle=False)
                fh.flush()
                os.fsync(fh.fileno())
            segments.append({"uid": seg.uid, "live": live_file})
        return {"segments": segments, **self.vocab.save(directory)}

    def adopt(self, directory: Path, manifest: dict) -> None:
        """Map the files :meth:`save` wrote into ``directory`` (returning ``manifest``) in place of memory.

        Only valid while the index is unchanged since that :meth:`save`. Spilled files it replaces are deleted.
        """
        for seg in self.segments:
            if seg.file_prefix != directory / f"seg-{seg.uid}":
                old = self._owned(seg.files())
                seg.map(directory)
                _unlink(old)
        old = self._owned(self.vocab.files())
        self.vocab.adopt(directory, manifest)
        _unlink(old)

    def load(self, directory: Path, manifest: dict, mmap: bool = True) -> None:
        """Restore what :meth:`save` wrote (segments memory-mapped).

        :raises ValueError: If a file is missing or inconsistent.
        """
        try:
            if str(manifest["vocab"]).endswith(".json"):  # written before the vocabulary was memory-mapped
                terms = json.loads((directory / manifest["vocab"]).read_text(encoding="utf-8"))
                vocab = Vocabulary.from_terms(terms, np.load(directory / manifest["df"], allow_pickle=False))
            else:
                vocab = Vocabulary.load(directory, manifest)
            segments = [
                Segment.load(directory, s["uid"], np.load(directory / s["live"], allow_pickle=False), mmap=mmap)
                for s in manifest["segments"]
            ]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"BM25 index in {directory} is corrupt: {exc}") from exc
        self.vocab = vocab
        self.segments = segments
        self._version += 1


def _accumulate(postings: list[tuple[np.ndarray, np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(matched local documents ascending, their summed contributions) over the query terms' postings.

    Each document's contributions are added in query-term order either way, so both paths give the same
    floats: a dense accumulator over the ``n`` documents when the postings are many, else a sort of them.
    """
    total = sum(len(docs) for docs, _ in postings)
    if total * SPARSE_FRACTION >= n:
        acc = np.zeros(n, dtype=np.float64)
        matched = np.zeros(n, dtype=bool)
        for docs, contrib in postings:
            matched[docs] = True
            acc[docs] += contrib
        cand = np.flatnonzero(matched)
        return cand, acc[cand]
    docs = np.concatenate([d for d, _ in postings])
    cand, inverse = np.unique(docs, return_inverse=True)
    return cand, np.bincount(inverse, weights=np.concatenate([c for _, c in postings]), minlength=len(cand))


def _unlink(files: list[Path]) -> None:
    for file in files:
        file.unlink(missing_ok=True)
