"""Sparse BM25 index: an eager (term x document) score matrix held and queried by ``bm25s``.

We build the matrix ourselves from the pure variant functions in :mod:`spart.bm25.scoring` (vectorised
numpy, no per-document Python loop) because bm25s has no variant that reproduces rank-bm25's Okapi; the
matrix is then handed to a ``bm25s.BM25`` object in its own CSC layout, and bm25s scores queries from it
(``get_scores_from_ids``). Building from token *ids* lets a caller (the document store) cache each
document's token ids once and rebuild the matrix cheaply after writes and deletes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from spart.bm25.scoring import get_variant

_BM25S_METHODS = ("robertson", "lucene", "atire", "bm25l", "bm25+")


class BM25Index:
    """BM25 over pre-tokenized documents.

    :param method: Scoring variant: ``okapi`` (= rank-bm25 BM25Okapi), ``robertson``, ``lucene`` (bm25s's
        default), ``atire``, ``bm25l``, ``bm25+``.
    :param k1: Term-frequency saturation.
    :param b: Length normalisation.
    :param delta: Lower bound added by ``bm25l`` / ``bm25+`` (ignored otherwise).
    :param epsilon: ``okapi`` only: negative idfs become ``epsilon * mean idf`` (rank-bm25's floor).
    :param dtype: Score dtype; float64 keeps Okapi within 1e-6 of rank-bm25 on real corpora.

    Example::

        index = BM25Index(method="okapi")
        index.build([["quick", "fox"], ["lazy", "dog"]])
        scores, positions = index.search(["fox"], k=1)  # positions index the build order
    """

    def __init__(
        self,
        method: str = "lucene",
        k1: float = 1.5,
        b: float = 0.75,
        delta: float = 0.5,
        epsilon: float = 0.25,
        dtype: str = "float64",
    ):
        self.variant = get_variant(method)
        if k1 < 0 or not 0 <= b <= 1 or delta < 0:
            raise ValueError(f"BM25 needs k1 >= 0, 0 <= b <= 1, delta >= 0; got k1={k1}, b={b}, delta={delta}")
        self.method, self.k1, self.b, self.delta, self.epsilon = method, k1, b, delta, epsilon
        self.dtype = np.dtype(dtype)
        self.vocab: dict[str, int] = {}
        self.n_docs = 0
        self._bm25 = None

    # ------------------------------------------------------------------ building
    def build(self, corpus_tokens: Iterable[Sequence[str]]) -> None:
        """Index tokenized documents; document positions follow the iteration order.

        :param corpus_tokens: One token list per document.
        """
        vocab: dict[str, int] = {}
        doc_ids = [np.fromiter((vocab.setdefault(t, len(vocab)) for t in doc), dtype=np.int64) for doc in corpus_tokens]
        self.build_from_ids(doc_ids, vocab)

    def build_from_ids(self, doc_term_ids: Sequence[np.ndarray], vocab: dict[str, int]) -> None:
        """Index documents given as arrays of term ids into ``vocab`` (terms may have no document).

        :param doc_term_ids: One int array of term ids per document, duplicates = term frequency.
        :param vocab: term -> id; ids must be ``< len(vocab)``.
        """
        import bm25s

        n_docs, n_vocab = len(doc_term_ids), len(vocab)
        lengths = np.fromiter((len(d) for d in doc_term_ids), dtype=np.int64, count=n_docs)
        terms = np.concatenate(doc_term_ids).astype(np.int64) if n_docs else np.zeros(0, np.int64)
        if terms.size and (terms.min() < 0 or terms.max() >= n_vocab):
            raise ValueError("term ids must be in [0, len(vocab))")
        docs = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
        # One (term, doc) pair per distinct occurrence, with its count = tf; sorted term-major for CSC.
        keys, tf = np.unique(terms * max(n_docs, 1) + docs, return_counts=True)
        pair_term, pair_doc = keys // max(n_docs, 1), keys % max(n_docs, 1)
        df = np.bincount(pair_term, minlength=n_vocab)
        avg_len = lengths.mean() if n_docs and lengths.sum() else 1.0

        v = self.variant
        present = df > 0
        idf = np.zeros(n_vocab, dtype=np.float64)
        # Terms of deleted documents stay in the vocabulary with df 0; they must not shift okapi's mean idf.
        idf[present] = v.idf(df[present], n_docs, epsilon=self.epsilon)
        tfc = v.tfc(tf, lengths[pair_doc], avg_len, self.k1, self.b, self.delta)
        data = idf[pair_term] * tfc
        absent = None
        if v.scores_absent_terms:
            # tfc(0) does not depend on the document length for bm25l / bm25+, so one value per term.
            absent = idf * v.tfc(np.zeros(1), avg_len, avg_len, self.k1, self.b, self.delta)[0]
            data -= absent[pair_term]  # bm25s adds absent[t] back to every document at query time
        indptr = np.zeros(n_vocab + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])

        bm25 = bm25s.BM25(
            k1=self.k1,
            b=self.b,
            delta=self.delta,
            method=self.method if self.method in _BM25S_METHODS else "robertson",
            dtype=self.dtype.name,
            int_dtype="int64",
        )
        bm25.scores = {
            "data": data.astype(self.dtype),
            "indices": pair_doc.astype(np.int64),
            "indptr": indptr,
            "num_docs": n_docs,
        }
        bm25.vocab_dict = vocab
        bm25.nonoccurrence_array = None if absent is None else absent.astype(self.dtype)
        self._bm25 = bm25
        self.vocab = vocab
        self.n_docs = n_docs
        self._idf = idf

    # ------------------------------------------------------------------ querying
    def _require_built(self):
        if self._bm25 is None:
            raise ValueError("the BM25 index is empty: call build() first")
        return self._bm25

    def token_ids(self, query_tokens: Sequence[str]) -> np.ndarray:
        """Ids of the query tokens that are in the vocabulary (repeats kept)."""
        vocab = self.vocab
        return np.fromiter((vocab[t] for t in query_tokens if t in vocab), dtype=np.int64)

    def get_scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every document, in build order (unknown query tokens contribute nothing)."""
        bm25 = self._require_built()
        ids = self.token_ids(query_tokens)
        if len(ids) == 0 or self.n_docs == 0:
            return np.zeros(self.n_docs, dtype=self.dtype)
        return bm25.get_scores_from_ids(ids)

    def search(
        self, query_tokens: Sequence[str], k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` documents that contain at least one query token.

        :param query_tokens: Tokenized query.
        :param k: Maximum number of results (> 0).
        :param allowed: Optional boolean mask over documents (build order); others are never returned.
        :returns: ``(scores, positions)`` sorted by descending score, ties by ascending position; may be
            shorter than ``k``.
        """
        if k <= 0:
            raise ValueError(f"k must be > 0, got {k}")
        bm25 = self._require_built()
        ids = self.token_ids(query_tokens)
        if len(ids) == 0 or self.n_docs == 0:
            return np.zeros(0, dtype=self.dtype), np.zeros(0, dtype=np.int64)
        indptr, indices = bm25.scores["indptr"], bm25.scores["indices"]
        # Candidates = union of the query terms' posting lists (a mask is O(N + postings), unlike np.unique).
        matched = np.zeros(self.n_docs, dtype=bool)
        for t in set(ids.tolist()):
            matched[indices[indptr[t] : indptr[t + 1]]] = True
        if allowed is not None:
            matched &= allowed
        cand = np.flatnonzero(matched)
        if len(cand) == 0:
            return np.zeros(0, dtype=self.dtype), np.zeros(0, dtype=np.int64)
        scores = bm25.get_scores_from_ids(ids)[cand]
        if len(cand) > k:
            kth = np.partition(scores, len(scores) - k)[len(scores) - k]
            keep = scores >= kth  # ties at the k-th value all survive here; the sort below breaks them
            cand, scores = cand[keep], scores[keep]
        order = np.lexsort((cand, -scores))[:k]
        return scores[order], cand[order]
