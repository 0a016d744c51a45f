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
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from spart.bm25.scoring import get_variant, okapi_floor, okapi_raw_idf

MERGE_FACTOR = 4  # segments per size tier before they are merged into one
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
        return cls._from_pairs(rowids, lengths, keys // n_terms, keys % n_terms, tf)

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
    def _from_pairs(cls, rowids, lengths, doc, term, tf) -> Segment:
        n_docs = len(rowids)
        order = np.lexsort((term, doc))
        pair_doc, pair_term, pair_tf = doc[order], term[order], tf[order]
        doc_indptr = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(np.bincount(pair_doc, minlength=n_docs), out=doc_indptr[1:])
        t_order = np.lexsort((pair_doc, pair_term))
        terms, counts = np.unique(pair_term[t_order], return_counts=True)
        term_indptr = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(counts, out=term_indptr[1:])
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

    Example::

        index = SegmentedBM25("okapi")
        index.add([7, 9], [["quick", "fox"], ["lazy", "dog"]])
        index.remove([7])
        scores, ids = index.search(["fox", "dog"], k=5)
    """

    def __init__(
        self, method: str = "lucene", k1: float = 1.5, b: float = 0.75, delta: float = 0.5, epsilon: float = 0.25
    ):
        self.variant = get_variant(method)
        if k1 < 0 or not 0 <= b <= 1 or delta < 0:
            raise ValueError(f"BM25 needs k1 >= 0, 0 <= b <= 1, delta >= 0; got k1={k1}, b={b}, delta={delta}")
        self.method, self.k1, self.b, self.delta, self.epsilon = method, k1, b, delta, epsilon
        self.vocab: dict[str, int] = {}
        self.df = np.zeros(0, dtype=np.int64)
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
    def _term_ids(self, tokens: Sequence[str]) -> np.ndarray:
        vocab = self.vocab
        return np.fromiter((vocab.setdefault(t, len(vocab)) for t in tokens), dtype=np.int64)

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
        ids = [self._term_ids(documents[i]) for i in order]
        lengths = np.fromiter((len(a) for a in ids), dtype=np.int64, count=len(ids))
        term = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        doc = np.repeat(np.arange(len(ids), dtype=np.int64), lengths)
        segment = Segment.build(rowids[order], lengths, doc, term)
        self._grow_df()
        np.add.at(self.df, segment.doc_terms_of(np.arange(len(segment))), 1)
        self.segments.append(segment)
        self._version += 1
        self._merge_tiers()

    def remove(self, rowids: Sequence[int]) -> int:
        """Delete documents by id; unknown or already deleted ids are ignored. Returns how many were live."""
        rowids = np.unique(np.asarray(rowids, dtype=np.int64))
        removed = 0
        if len(rowids) == 0:
            return 0
        for seg in self.segments:
            hit = seg.kill(rowids)
            if len(hit):
                np.subtract.at(self.df, seg.doc_terms_of(hit), 1)
                removed += len(hit)
        if removed:
            self.segments = [s for s in self.segments if s.n_live > 0]
            self._version += 1
        return removed

    def clear(self) -> None:
        """Forget every document (the vocabulary is kept)."""
        self.segments = []
        self.df[:] = 0
        self._version += 1

    def _grow_df(self) -> None:
        if len(self.df) < len(self.vocab):
            self.df = np.concatenate([self.df, np.zeros(len(self.vocab) - len(self.df), dtype=np.int64)])

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
            self.segments = [s for s in self.segments if all(s is not g for g in group)] + [merged]

    def compact(self) -> None:
        """Merge every segment into one (drops deleted documents)."""
        if len(self.segments) > 1 or (self.segments and self.segments[0].n_live < len(self.segments[0])):
            self.segments = [Segment.merge(self.segments)]

    # ---------------------------------------------------------------- scoring
    def _idf(self, term_ids: np.ndarray, n_docs: int) -> np.ndarray:
        df = self.df[term_ids]
        idf = np.zeros(len(term_ids), dtype=np.float64)
        present = df > 0
        if self.method == "okapi":
            # rank-bm25's floor depends on the mean idf over every term in the corpus: cached per version.
            if self._okapi_floor is None or self._okapi_floor[0] != self._version:
                floor = okapi_floor(okapi_raw_idf(self.df[self.df > 0], n_docs), self.epsilon)
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
        vocab = self.vocab
        query = [vocab[t] for t in query_tokens if t in vocab]
        n_docs = self.n_docs
        if not query or n_docs == 0:
            return empty
        uniq, mult = np.unique(np.asarray(query, dtype=np.int64), return_counts=True)
        idf = self._idf(uniq, n_docs)
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
            n = len(seg)
            acc = np.zeros(n, dtype=np.float64)
            matched = np.zeros(n, dtype=bool)
            for j, t in enumerate(uniq):
                if self.df[t] == 0:
                    continue
                docs, tf = seg.postings(int(t))
                if len(docs) == 0:
                    continue
                matched[docs] = True
                if live_terms[j] or v.scores_absent_terms:
                    contrib = idf[j] * v.tfc(tf, seg.lengths[docs], avg, k1, b, delta) - absent[j]
                    acc[docs] += mult[j] * contrib
            matched &= seg.live
            cand = np.flatnonzero(matched)
            if allowed is not None and len(cand):
                cand = cand[np.isin(np.asarray(seg.rowids[cand]), allowed)]
            if len(cand):
                out_scores.append(acc[cand] + base)
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
        """Write the segments, live masks and vocabulary into ``directory``; returns the manifest to keep."""
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
        terms = sorted(self.vocab, key=self.vocab.__getitem__)
        with open(directory / "vocab.json", "w", encoding="utf-8") as fh:
            json.dump(terms, fh)
            fh.flush()
            os.fsync(fh.fileno())
        with open(directory / "df.npy", "wb") as fh:
            np.save(fh, self.df, allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        return {"segments": segments, "vocab": "vocab.json", "df": "df.npy"}

    def load(self, directory: Path, manifest: dict, mmap: bool = True) -> None:
        """Restore what :meth:`save` wrote (segments memory-mapped).

        :raises ValueError: If a file is missing or inconsistent.
        """
        try:
            terms = json.loads((directory / manifest["vocab"]).read_text(encoding="utf-8"))
            df = np.load(directory / manifest["df"], allow_pickle=False)
            segments = [
                Segment.load(directory, s["uid"], np.load(directory / s["live"], allow_pickle=False), mmap=mmap)
                for s in manifest["segments"]
            ]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"BM25 index in {directory} is corrupt: {exc}") from exc
        if len(df) != len(terms):
            raise ValueError(f"BM25 index in {directory} is corrupt: {len(terms)} terms but {len(df)} df entries")
        self.vocab = {t: i for i, t in enumerate(terms)}
        self.df = np.asarray(df, dtype=np.int64).copy()
        self.segments = segments
        self._version += 1
