"""Evaluate rankings (from any pipeline, or fused offline) on a DPR or BEIR data set.

- DPR data sets: top-k answer accuracy, with :func:`spart.evaluation.answers.has_answer` run on each
  retrieved passage's **text from the corpus file** (looked up by id, as DPR does), never its title.
- BEIR data sets: ranx metrics against the qrels (nDCG@10, Recall@20/100, MRR@10, MAP by default).

Both produce a :class:`SystemResult` with the summary, a k = 1..max_k curve (top-k accuracy, or Recall@k)
for plots, and per-query records (ids, scores, hit vector or per-query metrics) for query-by-query
comparison.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spart.evaluation.answers import hits_for_ranking
from spart.evaluation.datasets import BEIR, DPR, EvalDataset
from spart.evaluation.metrics import (
    DEFAULT_BEIR_METRICS,
    DEFAULT_KS,
    accuracy_curve,
    beir_metrics,
    first_hit_ranks,
    top_k_accuracy,
)
from spart.evaluation.runs import Retrieved, run_pipeline, write_jsonl

CURVE_KS = (1, 2, 3, 5, 7, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 100)


@dataclass
class SystemResult:
    """The evaluation of one system on one data set."""

    system: str
    dataset: str
    kind: str
    summary: dict[str, float]
    curve: list[float]
    curve_ks: list[int] = field(default_factory=list)
    per_query: list[dict[str, Any]] = field(repr=False, default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, with_per_query: bool = False) -> dict[str, Any]:
        out = {
            "system": self.system,
            "dataset": self.dataset,
            "kind": self.kind,
            "summary": self.summary,
            "curve_ks": self.curve_ks,
            "curve": self.curve,
            "meta": self.meta,
        }
        if with_per_query:
            out["per_query"] = self.per_query
        return out


def texts_by_id(dataset: EvalDataset, ids: set[str]) -> dict[str, str]:
    """Texts (not titles) of the given passage ids, streamed from the corpus: memory bounded by ``ids``."""
    found: dict[str, str] = {}
    for passage in dataset.passages():
        if passage.id in ids:
            found[passage.id] = passage.text
            if len(found) == len(ids):
                break
    return found


def summary_key(k: int) -> str:
    return f"top{k}"


def evaluate_rankings(
    dataset: EvalDataset,
    rankings: Sequence[Retrieved],
    *,
    system: str = "system",
    ks: Sequence[int] = DEFAULT_KS,
    metrics: Sequence[str] = DEFAULT_BEIR_METRICS,
    max_k: int = 100,
    corpus_texts: Mapping[str, str] | None = None,
    with_curve: bool = True,
) -> SystemResult:
    """Score one ranking per dataset query.

    :param dataset: the data set (its queries define the order of ``rankings``).
    :param rankings: one :class:`Retrieved` per query, in ``dataset.queries`` order.
    :param system: the system's label.
    :param ks: top-k cut-offs for DPR accuracy.
    :param metrics: ranx metrics for BEIR.
    :param max_k: length of the plotted curve.
    :param corpus_texts: id → passage text (DPR); streamed from the corpus for the retrieved ids if omitted.
        An id missing from the corpus counts as no hit (DPR does the same).
    :param with_curve: compute the k = 1..max_k curve (fusion tuning skips it).
    :returns: the :class:`SystemResult`.
    """
    if len(rankings) != len(dataset.queries):
        raise ValueError(f"got {len(rankings)} rankings for {len(dataset.queries)} queries")
    per_query: list[dict[str, Any]] = []
    if dataset.kind == DPR:
        if corpus_texts is None:
            wanted = {doc_id for r in rankings for doc_id in r.doc_ids}
            corpus_texts = texts_by_id(dataset, wanted)
        hits = [
            hits_for_ranking(q.answers, [corpus_texts.get(d) for d in r.doc_ids], dataset.match_type)
            for q, r in zip(dataset.queries, rankings)
        ]
        accuracy = top_k_accuracy(hits, ks)
        summary = {summary_key(k): v for k, v in accuracy.items()}
        curve = accuracy_curve(hits, max_k).tolist() if with_curve else []
        curve_ks = list(range(1, len(curve) + 1))
        ranks = first_hit_ranks(hits)
        for q, r, h, rank in zip(dataset.queries, rankings, hits, ranks):
            per_query.append(
                {
                    "qid": q.id,
                    "question": q.text,
                    "answers": list(q.answers),
                    "doc_ids": r.doc_ids,
                    "scores": r.scores,
                    "hits": [int(x) for x in h],
                    "first_hit_rank": int(rank),
                }
            )
    elif dataset.kind == BEIR:
        ranked = {q.id: r.doc_ids for q, r in zip(dataset.queries, rankings)}
        # ranx costs about a second per metric here, so the Recall@k curve is sampled, not taken at every k.
        curve_ks = [k for k in CURVE_KS if k <= max_k] if with_curve else []
        curve_metrics = [f"recall@{k}" for k in curve_ks]
        wanted = list(dict.fromkeys(list(metrics) + curve_metrics))
        means, per_q = beir_metrics(dataset.qrels, ranked, wanted)
        summary = {m: means[m] for m in metrics}
        curve = [means[m] for m in curve_metrics]
        for q, r in zip(dataset.queries, rankings):
            relevant = dataset.qrels.get(q.id, {})
            per_query.append(
                {
                    "qid": q.id,
                    "question": q.text,
                    "relevant": sorted(relevant),
                    "doc_ids": r.doc_ids,
                    "scores": r.scores,
                    "hits": [int(relevant.get(d, 0) > 0) for d in r.doc_ids],
                    "metrics": {m: per_q[q.id][m] for m in metrics},
                }
            )
    else:
        raise ValueError(f"unknown data set kind {dataset.kind!r}")
    return SystemResult(
        system, dataset.name, dataset.kind, summary, curve, curve_ks, per_query, {"n_queries": len(rankings)}
    )


def evaluate_pipeline(
    pipeline: Any,
    dataset: EvalDataset,
    *,
    system: str = "system",
    top_k: int = 100,
    depth: int | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    metrics: Sequence[str] = DEFAULT_BEIR_METRICS,
    output: str | None = None,
    per_query_path: str | None = None,
    show_progress: bool = True,
) -> SystemResult:
    """Run a Haystack pipeline on every dataset query and evaluate its final documents.

    :param pipeline: a Haystack ``Pipeline`` whose store holds ``dataset``'s corpus.
    :param dataset: the data set.
    :param system: label used in tables, plots and files.
    :param top_k: length of the final list (and of the curve): set on the output component.
    :param depth: candidates of every earlier list (retrievers, a fuser feeding a ranker; ``None``: the
        pipeline's settings). See :mod:`spart.pipelines.running`.
    :param ks: DPR accuracy cut-offs (each must be <= ``top_k``).
    :param metrics: BEIR metrics.
    :param output: the component whose ``documents`` are evaluated (default: the leaf).
    :param per_query_path: if given, per-query records are written there as JSONL.
    :returns: the :class:`SystemResult`.
    """
    if dataset.kind == DPR and any(k > top_k for k in ks):
        raise ValueError(f"every k in {tuple(ks)} must be <= top_k={top_k}")
    rankings = run_pipeline(
        pipeline,
        [q.text for q in dataset.queries],
        top_k=top_k,
        depth=depth,
        output=output,
        show_progress=show_progress,
        desc=system,
    )
    result = evaluate_rankings(dataset, rankings, system=system, ks=ks, metrics=metrics, max_k=top_k)
    if per_query_path:
        write_jsonl(per_query_path, result.per_query)
    return result
