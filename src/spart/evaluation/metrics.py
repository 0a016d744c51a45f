"""Retrieval metrics: DPR top-k answer accuracy, and BEIR-style qrels metrics computed by ``ranx``.

The qrels metrics are never hand-written: ranx implements nDCG, Recall, MRR and MAP the way BEIR/trec_eval
do. Runs are handed to ranx with rank-derived scores (``n - rank``), so the order a pipeline returned is the
order evaluated, even where its own scores tie or are missing.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from spart._extras import require

DEFAULT_KS = (1, 5, 20, 100)
DEFAULT_BEIR_METRICS = ("ndcg@10", "recall@20", "recall@100", "mrr@10", "map")

# ranx needs every judged query to have at least one retrieved id; a query with no results gets this one,
# which is never relevant.
_EMPTY_RUN_ID = "__spart_no_result__"


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(int(k) for k in ks)
    if not ks:
        raise ValueError("ks must not be empty")
    if any(k <= 0 for k in ks):
        raise ValueError(f"every k must be positive, got {ks}")
    return ks


def first_hit_ranks(hits_per_question: Sequence[Sequence[bool]]) -> np.ndarray:
    """1-based rank of the first hit of each question, 0 where no retrieved passage has the answer."""
    ranks = np.zeros(len(hits_per_question), dtype=np.int64)
    for i, hits in enumerate(hits_per_question):
        for rank, hit in enumerate(hits, start=1):
            if hit:
                ranks[i] = rank
                break
    return ranks


def top_k_accuracy(hits_per_question: Sequence[Sequence[bool]], ks: Sequence[int] = DEFAULT_KS) -> dict[int, float]:
    """DPR top-k retrieval accuracy: the share of questions with an answer-bearing passage in the top k.

    :param hits_per_question: per question, one bool per retrieved passage (best first), e.g. from
        :func:`spart.evaluation.answers.hits_for_ranking`. A question with fewer than k results is judged
        on what it has.
    :param ks: cut-offs.
    :returns: ``{k: accuracy in [0, 1]}``.
    :raises ValueError: for no questions or a non-positive k.

    Example::

        >>> top_k_accuracy([[False, True], [False, False]], ks=(1, 2))
        {1: 0.0, 2: 0.5}
    """
    ks = _check_ks(ks)
    if len(hits_per_question) == 0:
        raise ValueError("no questions to evaluate")
    ranks = first_hit_ranks(hits_per_question)
    found = ranks > 0
    return {k: float(np.mean(found & (ranks <= k))) for k in ks}


def accuracy_curve(hits_per_question: Sequence[Sequence[bool]], max_k: int = 100) -> np.ndarray:
    """Top-k accuracy for every k in 1..max_k (index k-1), for plotting."""
    if max_k <= 0:
        raise ValueError(f"max_k must be positive, got {max_k}")
    ranks = first_hit_ranks(hits_per_question)
    ks = np.arange(1, max_k + 1)
    return ((ranks[None, :] > 0) & (ranks[None, :] <= ks[:, None])).mean(axis=1)


def to_ranx_run(ranked_ids: Mapping[str, Sequence[str]], name: str = "run"):
    """Build a ``ranx.Run`` whose order is exactly the given ranking (scores ``n - rank``)."""
    Run = require("ranx", "eval").Run

    run: dict[str, dict[str, float]] = {}
    for qid, ids in ranked_ids.items():
        scores: dict[str, float] = {}
        n = len(ids)
        for rank, doc_id in enumerate(ids):
            scores.setdefault(str(doc_id), float(n - rank))  # a repeated id keeps its best rank
        run[str(qid)] = scores or {_EMPTY_RUN_ID: 0.0}
    return Run(run, name=name)


def to_ranx_qrels(qrels: Mapping[str, Mapping[str, int]]):
    """Build a ``ranx.Qrels`` (ids as strings, relevance as int)."""
    Qrels = require("ranx", "eval").Qrels

    return Qrels({str(q): {str(d): int(s) for d, s in docs.items()} for q, docs in qrels.items()})


def judged_rankings(qrels: Mapping[str, Mapping[str, int]], ranked_ids: Mapping[str, Sequence[str]]):
    """The rankings of the judged queries only; a judged query without a ranking is a ``ValueError``."""
    missing = [q for q in qrels if q not in ranked_ids]
    if missing:
        raise ValueError(f"{len(missing)} judged queries have no ranking (e.g. {missing[:3]})")
    # Queries without judgements (e.g. the other split's) are not scored, as in BEIR.
    return {q: ranked_ids[q] for q in qrels}


def beir_metrics(
    qrels: Mapping[str, Mapping[str, int]],
    ranked_ids: Mapping[str, Sequence[str]],
    metrics: Sequence[str] = DEFAULT_BEIR_METRICS,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """BEIR-style metrics of one ranking against qrels, computed by ranx.

    :param qrels: ``{query_id: {doc_id: relevance}}`` (e.g. :func:`spart.data.read_beir_qrels`).
    :param ranked_ids: ``{query_id: [doc_id, ...]}``, best first; must cover every judged query.
    :param metrics: ranx metric names such as ``"ndcg@10"``, ``"recall@100"``, ``"mrr@10"``, ``"map"``.
    :returns: ``(means, per_query)`` where ``per_query[qid][metric]`` is the query's value.
    :raises ValueError: if qrels are empty or a judged query has no ranking.
    """
    evaluate = require("ranx", "eval").evaluate

    if not qrels:
        raise ValueError("qrels are empty")
    metrics = list(metrics)
    ranked = judged_rankings(qrels, ranked_ids)
    qrels_obj = to_ranx_qrels(qrels)
    run = to_ranx_run(ranked)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's uint64->int64 cast warning inside ranx is harmless here
        per_metric = evaluate(qrels_obj, run, metrics, return_mean=False, make_comparable=True)
    if len(metrics) == 1:
        per_metric = {metrics[0]: per_metric}
    query_ids = list(qrels_obj.keys())
    per_query = {qid: {m: float(per_metric[m][i]) for m in metrics} for i, qid in enumerate(query_ids)}
    means = {m: float(np.mean(per_metric[m])) for m in metrics}
    return means, per_query
