"""Fusion of ranked lists from several retrievers: pure functions, standard library only.

A *ranked list* is a sequence of ``(doc_id, score)`` pairs, best first (the order is the rank; RRF uses only
the order). Every function returns the fused list as ``[(doc_id, fused_score), ...]`` sorted by descending
fused score; ties keep the order in which documents first appear (list 0 in rank order, then the new
documents of list 1, ...), so results are deterministic. A document that appears twice in one list keeps its
first (best-ranked) occurrence. ``weights`` has one entry per list; ``top_k`` cuts the fused list.

Formulas (``L`` lists, ``w_i`` the weight of list ``i``, ``r_i(d)`` the 1-based rank of ``d`` in list ``i``,
``s_i(d)`` its score there):

- ``rrf`` (Cormack et al., 2009): ``sum_i w_i / (k + r_i(d))`` over the lists that contain ``d``; ``k = 60``,
  ``w_i = 1`` by default.
- ``convex_minmax``: ``sum_i w_i * m_i(d)`` with ``m_i(d) = (s_i(d) - min_i) / (max_i - min_i)``; a document
  missing from list ``i`` gets ``m_i = 0`` (the list's minimum); if all of list ``i``'s scores are equal its
  documents get ``m_i = 1``. ``w_i = 1/L`` by default; weights are used as given (not renormalised).
- ``convex_zscore``: ``sum_i w_i * z_i(d)`` with ``z_i(d) = (s_i(d) - mean_i) / std_i`` (population standard
  deviation over the list's scores); a missing document gets the list's minimum ``z``; a list whose scores
  are all equal gives ``z = 0``. ``w_i = 1/L`` by default.
- ``weighted_raw``: ``sum_i w_i * s_i(d)`` on raw scores, where a document missing from list ``i`` takes
  list ``i``'s minimum score. With lists ``(dense, bm25)`` and weights ``(1, λ)`` this is DPR's and
  Pyserini's hybrid ``dense + λ·bm25``. ``w_i = 1`` by default.

An empty list contributes nothing (0) to every document.

Example::

    from spart.fusion import fuse
    dense = [("d1", 0.82), ("d2", 0.80)]
    bm25 = [("d2", 11.5), ("d3", 9.0)]
    fuse([dense, bm25], mode="weighted_raw", weights=[1.0, 0.1], top_k=10)
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

from spart.validation import check_top_k

RankedList = Sequence[tuple[Hashable, float]]
Fused = list[tuple[Hashable, float]]

FUSION_MODES = ("rrf", "convex_minmax", "convex_zscore", "weighted_raw")
RRF_K = 60


def _dedupe(ranked: RankedList, index: int, need_scores: bool) -> list[tuple[Hashable, float]]:
    """The list with duplicates dropped (first occurrence kept), scores checked as finite numbers."""
    seen: set = set()
    out = []
    for position, item in enumerate(ranked):
        try:
            doc_id, score = item
        except (TypeError, ValueError):
            raise ValueError(
                f"list {index}, position {position}: expected a (doc_id, score) pair, got {item!r}"
            ) from None
        if doc_id in seen:
            continue
        seen.add(doc_id)
        if need_scores:
            if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
                raise ValueError(f"list {index}, document {doc_id!r}: score must be a finite number, got {score!r}")
            score = float(score)
        out.append((doc_id, score))
    return out


def _prepare(
    ranked_lists: Sequence[RankedList], weights: Sequence[float] | None, default_weight: float, need_scores: bool
) -> tuple[list[list[tuple[Hashable, float]]], list[float]]:
    if isinstance(ranked_lists, (str, bytes)) or not isinstance(ranked_lists, Sequence):
        raise ValueError("ranked_lists must be a sequence of ranked lists")
    lists = [_dedupe(r, i, need_scores) for i, r in enumerate(ranked_lists)]
    return lists, check_weights(weights, len(lists), default_weight)


def check_weights(weights: Sequence[float] | None, n_lists: int, default_weight: float = 1.0) -> list[float]:
    """``weights`` as floats, one per list (``default_weight`` each when ``None``).

    :raises ValueError: on a wrong count, or a negative or non-finite weight.
    """
    if weights is None:
        return [default_weight] * n_lists
    weights = list(weights)
    if len(weights) != n_lists:
        raise ValueError(f"got {len(weights)} weights for {n_lists} ranked lists; give one weight per list")
    for i, w in enumerate(weights):
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValueError(f"weight {i} must be a finite number >= 0, got {w!r}")
    return [float(w) for w in weights]


def _finish(totals: dict[Hashable, float], top_k: int | None) -> Fused:
    # Python's sort is stable and `totals` keeps first-appearance order, which is the documented tie-break.
    fused = sorted(totals.items(), key=lambda item: -item[1])
    return fused[:top_k] if top_k is not None else fused


def _union(lists: list[list[tuple[Hashable, float]]]) -> dict[Hashable, float]:
    totals: dict[Hashable, float] = {}
    for ranked in lists:
        for doc_id, _ in ranked:
            totals.setdefault(doc_id, 0.0)
    return totals


def reciprocal_rank_fusion(
    ranked_lists: Sequence[RankedList],
    weights: Sequence[float] | None = None,
    k: float = RRF_K,
    top_k: int | None = None,
) -> Fused:
    """Reciprocal rank fusion: ``sum_i w_i / (k + rank_i(d))`` (1-based ranks; absent lists add 0).

    :param ranked_lists: ``[(doc_id, score), ...]`` per retriever, best first (scores are ignored).
    :param weights: one weight per list (default 1 each).
    :param k: the RRF constant (60, as in Cormack et al.); must be >= 0.
    :param top_k: keep the best ``top_k`` fused documents (``None``: all).
    :returns: ``[(doc_id, fused_score), ...]``, best first.
    """
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not math.isfinite(k) or k < 0:
        raise ValueError(f"the RRF constant k must be a finite number >= 0, got {k!r}")
    check_top_k(top_k, allow_none=True)
    lists, weights = _prepare(ranked_lists, weights, 1.0, need_scores=False)
    totals = _union(lists)
    for ranked, weight in zip(lists, weights):
        for rank, (doc_id, _) in enumerate(ranked, start=1):
            totals[doc_id] += weight / (k + rank)
    return _finish(totals, top_k)


def normalize_scores(scores: Sequence[float], method: str) -> tuple[list[float], float]:
    """Normalised scores of one list, and the value a document missing from that list gets.

    :param scores: the list's raw scores.
    :param method: ``"minmax"`` or ``"zscore"`` (formulas in the module docstring).
    :returns: ``(normalised, missing_value)``.
    """
    if not scores:
        return [], 0.0
    if method == "minmax":
        low, high = min(scores), max(scores)
        if high == low:
            return [1.0] * len(scores), 0.0
        return [(s - low) / (high - low) for s in scores], 0.0
    if method == "zscore":
        mean = math.fsum(scores) / len(scores)
        std = math.sqrt(math.fsum((s - mean) ** 2 for s in scores) / len(scores))
        if std == 0.0:
            return [0.0] * len(scores), 0.0
        z = [(s - mean) / std for s in scores]
        return z, min(z)
    raise ValueError(f"normalisation must be 'minmax' or 'zscore', got {method!r}")


def _weighted_sum(
    lists: list[list[tuple[Hashable, float]]],
    weights: list[float],
    values: list[tuple[list[float], float]],
    top_k: int | None,
) -> Fused:
    totals = _union(lists)
    for ranked, weight, (normalised, missing) in zip(lists, weights, values):
        if not ranked:
            continue
        present = set()
        for (doc_id, _), value in zip(ranked, normalised):
            totals[doc_id] += weight * value
            present.add(doc_id)
        if missing != 0.0:
            for doc_id in totals:
                if doc_id not in present:
                    totals[doc_id] += weight * missing
    return _finish(totals, top_k)


def convex_combination(
    ranked_lists: Sequence[RankedList],
    weights: Sequence[float] | None = None,
    normalization: str = "minmax",
    top_k: int | None = None,
) -> Fused:
    """Weighted sum of per-list normalised scores (``minmax`` or ``zscore``; see the module docstring).

    :param ranked_lists: ``[(doc_id, score), ...]`` per retriever, best first.
    :param weights: one weight per list (default ``1/L`` each; not renormalised).
    :param normalization: ``"minmax"`` or ``"zscore"``.
    :param top_k: keep the best ``top_k`` fused documents (``None``: all).
    :returns: ``[(doc_id, fused_score), ...]``, best first.
    """
    if normalization not in ("minmax", "zscore"):
        raise ValueError(f"normalization must be 'minmax' or 'zscore', got {normalization!r}")
    check_top_k(top_k, allow_none=True)
    n = len(ranked_lists) if isinstance(ranked_lists, Sequence) else 0
    lists, weights = _prepare(ranked_lists, weights, 1.0 / max(n, 1), need_scores=True)
    values = [normalize_scores([s for _, s in ranked], normalization) for ranked in lists]
    return _weighted_sum(lists, weights, values, top_k)


def weighted_raw_sum(
    ranked_lists: Sequence[RankedList], weights: Sequence[float] | None = None, top_k: int | None = None
) -> Fused:
    """``sum_i w_i * s_i(d)`` on raw scores; a document missing from a list takes that list's minimum score.

    With ``[dense, bm25]`` and ``weights=[1, λ]`` this is DPR/Pyserini's ``dense + λ·bm25``.

    :param ranked_lists: ``[(doc_id, score), ...]`` per retriever, best first.
    :param weights: one weight per list (default 1 each).
    :param top_k: keep the best ``top_k`` fused documents (``None``: all).
    :returns: ``[(doc_id, fused_score), ...]``, best first.
    """
    check_top_k(top_k, allow_none=True)
    lists, weights = _prepare(ranked_lists, weights, 1.0, need_scores=True)
    values = []
    for ranked in lists:
        scores = [s for _, s in ranked]
        values.append((scores, min(scores) if scores else 0.0))
    return _weighted_sum(lists, weights, values, top_k)


def fuse(
    ranked_lists: Sequence[RankedList],
    mode: str = "rrf",
    weights: Sequence[float] | None = None,
    top_k: int | None = None,
    rrf_k: float = RRF_K,
) -> Fused:
    """Fuse ranked lists with the named mode (one of :data:`FUSION_MODES`).

    :param ranked_lists: ``[(doc_id, score), ...]`` per retriever, best first.
    :param mode: ``"rrf"``, ``"convex_minmax"``, ``"convex_zscore"`` or ``"weighted_raw"``.
    :param weights: one weight per list (each mode's default when ``None``).
    :param top_k: keep the best ``top_k`` fused documents (``None``: all).
    :param rrf_k: the RRF constant (``rrf`` only).
    :returns: ``[(doc_id, fused_score), ...]``, best first.
    """
    check_mode(mode)
    if mode == "rrf":
        return reciprocal_rank_fusion(ranked_lists, weights, k=rrf_k, top_k=top_k)
    if mode == "convex_minmax":
        return convex_combination(ranked_lists, weights, "minmax", top_k)
    if mode == "convex_zscore":
        return convex_combination(ranked_lists, weights, "zscore", top_k)
    return weighted_raw_sum(ranked_lists, weights, top_k)


def check_mode(mode: str) -> str:
    """``mode`` if it is a known fusion mode; otherwise a ``ValueError`` listing the modes."""
    if mode not in FUSION_MODES:
        raise ValueError(f"unknown fusion mode {mode!r}; choose one of {FUSION_MODES}")
    return mode


def interpolate_zscores(primary: Sequence[float], secondary: Sequence[float], weight: float) -> list[float]:
    """``(1 - weight) * z(primary) + weight * z(secondary)`` over one query's candidates (same order in both).

    The per-query z-score interpolation of a reranker's score with the first-stage retriever's score (used by
    :class:`~spart.components.rankers.QuestionLikelihoodRanker` with ``retriever_weight`` and by ART's
    ``teacher.base_weight`` target). ``weight = 0`` returns ``z(primary)``, ``1`` returns ``z(secondary)``; a
    list whose scores are all equal contributes 0.

    :raises ValueError: lengths differ, ``weight`` is outside [0, 1], or a score is not finite.
    """
    if len(primary) != len(secondary):
        raise ValueError(f"interpolation needs one secondary score per candidate ({len(primary)} vs {len(secondary)})")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"the interpolation weight must be in [0, 1], got {weight}")
    for s in (*primary, *secondary):
        if not math.isfinite(s):
            raise ValueError(f"scores must be finite numbers, got {s!r}")
    z1, _ = normalize_scores(list(primary), "zscore")
    z2, _ = normalize_scores(list(secondary), "zscore")
    return [(1.0 - weight) * a + weight * b for a, b in zip(z1, z2)]
