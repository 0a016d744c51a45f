"""Paired significance tests between retrieval systems evaluated on the same queries.

- :func:`paired_significance`: a paired test on per-query values (scipy), e.g. DPR top-k hit vectors, which
  have no qrels for ranx.
- :func:`compare_runs`: ranx's ``compare`` on BEIR rankings against qrels.
- :func:`baseline_significance`: every system of one ``spart eval`` call against the first one.
- :func:`compare_records`: two systems from their per-query records (the JSONL files ``spart eval --out``
  writes), e.g. checkpoints evaluated in separate calls; ``benchmarks/compare_eval_runs.py`` prints it.

Per-query records are the dictionaries of ``SystemResult.per_query``: ``qid``, ``doc_ids``, ``hits`` (0/1 per
retrieved passage) and, for BEIR, ``relevant``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from spart._extras import require
from spart.evaluation.metrics import beir_metrics, judged_rankings, to_ranx_qrels, to_ranx_run

Record = Mapping[str, Any]


def paired_significance(a: Sequence[float], b: Sequence[float], test: str = "student") -> float:
    """Two-sided p-value of a paired test on per-question values (e.g. top-k hit 0/1 vectors).

    Used for DPR answer accuracy, which has no qrels for ranx; ``student`` is scipy's paired t-test,
    ``wilcoxon`` the signed-rank test.

    :returns: the p-value (1.0 when the two vectors are identical).
    """
    stats = require("scipy.stats", "eval")

    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired vectors must have the same 1-d shape, got {a.shape} and {b.shape}")
    if np.array_equal(a, b):
        return 1.0
    if test == "student":
        return float(stats.ttest_rel(a, b).pvalue)
    if test == "wilcoxon":
        return float(stats.wilcoxon(a, b).pvalue)
    raise ValueError(f"unknown test {test!r} (expected 'student' or 'wilcoxon')")


def compare_runs(
    qrels: Mapping[str, Mapping[str, int]],
    runs: Mapping[str, Mapping[str, Sequence[str]]],
    metrics: Sequence[str] = ("ndcg@10", "recall@100"),
    stat_test: str = "student",
    max_p: float = 0.05,
) -> dict:
    """Paired significance test between systems on the same queries (ranx ``compare``).

    :param qrels: relevance judgements.
    :param runs: ``{system_name: {query_id: [doc_id, ...]}}`` (at least two systems).
    :param metrics: metrics to compare.
    :param stat_test: ranx test: ``"student"`` (paired t-test), ``"fisher"`` (randomisation), ``"tukey"``...
    :param max_p: significance level.
    :returns: ranx's report as a dict: per system its scores, p-values against every other system
        (``comparisons``) and win/tie/loss counts.
    """
    compare = require("ranx", "eval").compare

    if len(runs) < 2:
        raise ValueError("compare_runs needs at least two runs")
    qrels_obj = to_ranx_qrels(qrels)
    ranx_runs = [to_ranx_run(judged_rankings(qrels, ranked), name=name) for name, ranked in runs.items()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = compare(
            qrels_obj, ranx_runs, metrics=list(metrics), stat_test=stat_test, max_p=max_p, make_comparable=True
        )
    return _plain(report.to_dict())


def hits_in_top(records: Sequence[Record], k: int) -> np.ndarray:
    """Per query record, 1.0 if a relevant / answer-bearing passage is in the top ``k``, else 0.0."""
    return np.array([float(any(record["hits"][:k])) for record in records], dtype=float)


def baseline_significance(results: Sequence[Any], dataset: Any, stat_test: str = "student") -> dict[str, Any]:
    """Paired tests of every system against the first one (the baseline), as ``spart eval`` reports them.

    BEIR data sets use ranx (:func:`compare_runs`; ``wilcoxon`` is not a ranx test, so it falls back to
    ``student``); DPR data sets test the top-k hit vectors with :func:`paired_significance` (``student`` or
    ``wilcoxon``; ``fisher`` falls back to ``student``).

    :param results: ``SystemResult`` objects of one evaluation, the baseline first.
    :param dataset: the ``EvalDataset`` they were evaluated on.
    :param stat_test: ``"student"``, ``"fisher"`` or ``"wilcoxon"``.
    :returns: ``{"baseline": name, "test": test used, "p_values": {system: {metric: p}}}``; ``{}`` for one system.
    """
    if len(results) < 2:
        return {}
    base = results[0]
    if dataset.kind == "beir":
        runs = {r.system: {p["qid"]: p["doc_ids"] for p in r.per_query} for r in results}
        test = "student" if stat_test == "wilcoxon" else stat_test
        report = compare_runs(dataset.qrels, runs, metrics=list(base.summary), stat_test=test)
        p_values = {
            r.system: {  # ranx's t-test is NaN (0/0) where every query scores the same: no difference, p = 1
                metric: 1.0 if p != p else p for metric, p in report[r.system]["comparisons"][base.system].items()
            }
            for r in results[1:]
        }
        return {"baseline": base.system, "test": test, "p_values": p_values}
    test = "wilcoxon" if stat_test == "wilcoxon" else "student"
    p_values = {}
    for r in results[1:]:
        p_values[r.system] = {}
        for key in base.summary:
            k = int(key[3:])  # "top20" -> 20
            p_values[r.system][key] = paired_significance(
                hits_in_top(r.per_query, k), hits_in_top(base.per_query, k), test
            )
    return {"baseline": base.system, "test": test, "p_values": p_values}


@dataclass
class PairedComparison:
    """System B against system A on one metric, query by query."""

    metric: str
    mean_a: float
    mean_b: float
    p_value: float
    wins: int  # queries where B is better
    ties: int
    losses: int

    @property
    def difference(self) -> float:
        """``mean_b - mean_a``."""
        return self.mean_b - self.mean_a


def per_query_values(records: Sequence[Record], metrics: Sequence[str]) -> dict[str, np.ndarray]:
    """Each metric's per-query values, in the records' order.

    :param records: per-query records of one system.
    :param metrics: ``"top<k>"`` (a hit in the top k, from ``hits``) or, for BEIR records (with ``relevant``),
        any ranx metric such as ``"ndcg@10"``, computed from ``doc_ids`` against binary relevance.
    :returns: ``{metric: values}``.
    """
    values: dict[str, np.ndarray] = {}
    ranx_metrics = [m for m in metrics if not m.startswith("top")]
    for metric in metrics:
        if metric.startswith("top"):
            values[metric] = hits_in_top(records, int(metric[3:]))
    if ranx_metrics:
        if any("relevant" not in record for record in records):
            raise ValueError(f"{ranx_metrics} need BEIR records (with 'relevant'); use top<k> for DPR records")
        qrels = {str(r["qid"]): {str(d): 1 for d in r["relevant"]} for r in records}
        ranked = {str(r["qid"]): r["doc_ids"] for r in records}
        _, per_query = beir_metrics(qrels, ranked, ranx_metrics)
        for metric in ranx_metrics:
            values[metric] = np.array([per_query[str(r["qid"])][metric] for r in records], dtype=float)
    return values


def compare_records(
    a: Sequence[Record], b: Sequence[Record], metrics: Sequence[str], test: str = "student"
) -> list[PairedComparison]:
    """Compare two systems' per-query records on the same queries, one :class:`PairedComparison` per metric.

    :param a: system A's records (e.g. :func:`spart.evaluation.runs.read_jsonl` of a ``spart eval`` run file).
    :param b: system B's records, for the same query ids (any order).
    :param metrics: see :func:`per_query_values`.
    :param test: the paired test (:func:`paired_significance`).
    :raises ValueError: if the two runs cover different queries.
    """
    by_qid = {str(r["qid"]): r for r in b}
    if len(by_qid) != len(a) or any(str(r["qid"]) not in by_qid for r in a):
        raise ValueError(f"the runs cover different queries ({len(a)} vs {len(b)} records)")
    b = [by_qid[str(r["qid"])] for r in a]
    values_a, values_b = per_query_values(a, metrics), per_query_values(b, metrics)
    rows = []
    for metric in metrics:
        x, y = values_a[metric], values_b[metric]
        wins, losses = int((y > x).sum()), int((y < x).sum())
        rows.append(
            PairedComparison(
                metric,
                float(x.mean()),
                float(y.mean()),
                paired_significance(x, y, test),
                wins,
                len(x) - wins - losses,
                losses,
            )
        )
    return rows


def _plain(value):
    # ranx reports carry numpy scalars; make them JSON-serialisable.
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
