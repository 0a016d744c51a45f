"""BM25 scoring variants as small pure functions, one idf and one term-frequency component per variant.

A variant's score of document ``d`` for query ``q`` is ``sum over query tokens t of idf(t) * tfc(tf(t, d))``
(a token repeated in the query counts each time, as in rank-bm25 and bm25s). Every function is vectorised
over numpy arrays. Formulas follow Kamphuis et al., "Which BM25 do you mean?" (ECIR 2020) as implemented
by bm25s, plus ``okapi``, which reproduces ``rank_bm25.BM25Okapi`` exactly:

========== ============================================== ==================================================
name       idf(df, N)                                     tfc(tf, L = k1 * (1 - b + b * len_d / avg_len))
========== ============================================== ==================================================
okapi      log((N - df + .5) / (df + .5)); negative values (k1 + 1) * tf / (tf + L)
           replaced by epsilon * mean idf (rank-bm25)
robertson  log(max(1, (N - df + .5) / (df + .5)))         tf / (tf + L)
lucene     log(1 + (N - df + .5) / (df + .5))             tf / (tf + L)
atire      log(N / df)                                    (k1 + 1) * tf / (tf + L)
bm25l      log((N + 1) / (df + .5))                       (k1 + 1) (c + delta) / (k1 + c + delta),
                                                          c = tf / (1 - b + b * len_d / avg_len)
bm25+      log((N + 1) / df)                              (k1 + 1) * tf / (tf + L) + delta
========== ============================================== ==================================================

Deviations and quirks, on purpose:

* ``okapi``: rank-bm25 computes ``idf = log(N - df + 0.5) - log(df + 0.5)``; when that is negative (a term
  in more than half of the documents) it replaces it with ``epsilon * average_idf``, where the average is
  taken over every corpus term *before* the replacement (negative values included). bm25s has no method
  with this floor (its ``robertson`` clips at 0 and drops the ``k1 + 1`` factor), so we implement it here
  and test it against ``rank_bm25.BM25Okapi`` to 1e-6.
* ``lucene`` / ``robertson`` drop Lucene's constant ``k1 + 1`` numerator factor, as bm25s does; rankings
  are unchanged, scores are ``k1 + 1`` times smaller than Lucene's.
* ``bm25l`` / ``bm25+`` give query terms that are absent from a document their ``tfc(0)`` score (as bm25s
  and rank-bm25 do; Lv & Zhai apply delta only to present terms). That adds the same constant to every
  document for a given query, so rankings are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# ------------------------------------------------------------------ idf components


def okapi_raw_idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    """Okapi idf before rank-bm25's floor: ``log(N - df + 0.5) - log(df + 0.5)`` (may be negative)."""
    df = np.asarray(df, dtype=np.float64)
    return np.log(n_docs - df + 0.5) - np.log(df + 0.5)


def okapi_floor(raw_idf_all_terms: np.ndarray, epsilon: float = 0.25) -> float:
    """rank-bm25's replacement for a negative idf: ``epsilon`` * the mean raw idf over *every* corpus term."""
    return float(epsilon * (raw_idf_all_terms.sum() / raw_idf_all_terms.size)) if raw_idf_all_terms.size else 0.0


def idf_okapi(df: np.ndarray, n_docs: int, epsilon: float = 0.25) -> np.ndarray:
    """rank-bm25's Okapi idf with its floor: negative idf -> ``epsilon`` * mean idf over all terms."""
    idf = okapi_raw_idf(df, n_docs)
    return np.where(idf < 0, okapi_floor(idf, epsilon), idf)


def idf_robertson(df: np.ndarray, n_docs: int, epsilon: float = 0.25) -> np.ndarray:
    """Robertson idf clipped at 0 (bm25s's ``robertson``)."""
    df = np.asarray(df, dtype=np.float64)
    return np.log(np.maximum(1.0, (n_docs - df + 0.5) / (df + 0.5)))


def idf_lucene(df: np.ndarray, n_docs: int, epsilon: float = 0.25) -> np.ndarray:
    """Lucene's idf, always positive."""
    df = np.asarray(df, dtype=np.float64)
    return np.log1p((n_docs - df + 0.5) / (df + 0.5))


def idf_atire(df: np.ndarray, n_docs: int, epsilon: float = 0.25) -> np.ndarray:
    """ATIRE idf ``log(N / df)``."""
    df = np.asarray(df, dtype=np.float64)
    return np.log(n_docs / df)


def idf_bm25l(df: np.ndarray, n_docs: int, epsilon: float = 0.25) -> np.ndarray:
    """BM25L idf ``log((N + 1) / (df + 0.5))``."""
    df = np.asarray(df, dtype=np.float64)
    return np.log((n_docs + 1) / (df + 0.5))


def idf_bm25plus(df: np.ndarray, n_docs: int, epsilon: float = 0.25) -> np.ndarray:
    """BM25+ idf ``log((N + 1) / df)``."""
    df = np.asarray(df, dtype=np.float64)
    return np.log((n_docs + 1) / df)


# ------------------------------------------------------------------ term-frequency components


def _length_norm(doc_len, avg_len, b):
    return 1.0 - b + b * np.asarray(doc_len, dtype=np.float64) / avg_len


def tfc_okapi(tf, doc_len, avg_len, k1, b, delta=0.0):
    """``(k1 + 1) tf / (tf + k1 (1 - b + b len/avg))`` (Okapi / ATIRE)."""
    tf = np.asarray(tf, dtype=np.float64)
    return tf * (k1 + 1.0) / (tf + k1 * _length_norm(doc_len, avg_len, b))


def tfc_robertson(tf, doc_len, avg_len, k1, b, delta=0.0):
    """``tf / (tf + k1 (1 - b + b len/avg))`` (bm25s's robertson and lucene)."""
    tf = np.asarray(tf, dtype=np.float64)
    return tf / (tf + k1 * _length_norm(doc_len, avg_len, b))


def tfc_bm25l(tf, doc_len, avg_len, k1, b, delta=0.5):
    """BM25L: ``(k1 + 1)(c + delta) / (k1 + c + delta)`` with ``c = tf / (1 - b + b len/avg)``."""
    c = np.asarray(tf, dtype=np.float64) / _length_norm(doc_len, avg_len, b)
    return (k1 + 1.0) * (c + delta) / (k1 + c + delta)


def tfc_bm25plus(tf, doc_len, avg_len, k1, b, delta=0.5):
    """BM25+: Okapi's tfc plus ``delta``."""
    return tfc_okapi(tf, doc_len, avg_len, k1, b) + delta


# ------------------------------------------------------------------ registry


@dataclass(frozen=True)
class Variant:
    """One BM25 variant: its idf and tfc functions, and whether absent terms score ``idf * tfc(0) != 0``."""

    name: str
    idf: Callable[..., np.ndarray]
    tfc: Callable[..., np.ndarray]
    scores_absent_terms: bool = False


VARIANTS: dict[str, Variant] = {
    "okapi": Variant("okapi", idf_okapi, tfc_okapi),
    "robertson": Variant("robertson", idf_robertson, tfc_robertson),
    "lucene": Variant("lucene", idf_lucene, tfc_robertson),
    "atire": Variant("atire", idf_atire, tfc_okapi),
    "bm25l": Variant("bm25l", idf_bm25l, tfc_bm25l, scores_absent_terms=True),
    "bm25+": Variant("bm25+", idf_bm25plus, tfc_bm25plus, scores_absent_terms=True),
}


def get_variant(name: str) -> Variant:
    """Look a variant up by name (``okapi``, ``robertson``, ``lucene``, ``atire``, ``bm25l``, ``bm25+``).

    :raises ValueError: For an unknown name.
    """
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown BM25 method {name!r}; choose one of {sorted(VARIANTS)}") from None
