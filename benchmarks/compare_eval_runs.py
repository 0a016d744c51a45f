"""Paired significance between two systems evaluated in *separate* ``spart eval`` calls (same queries).

``spart eval`` tests the systems of one call against each other; learning curves evaluate each checkpoint on its
own, so this reads the per-query JSONL files they wrote (``<out stem>.<system>.jsonl``) and compares two.

Usage::

    python benchmarks/compare_eval_runs.py A.jsonl B.jsonl                  # BEIR: nDCG@10, MRR@10, R@100 (ranx)
    python benchmarks/compare_eval_runs.py A.jsonl B.jsonl --top-k 1,5,20   # DPR: top-k accuracy (paired t-test)

Prints each metric for A and B, B - A, the two-sided p-value and B's wins/ties/losses per query.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def read_run(path: Path) -> dict[str, dict]:
    with open(path, encoding="utf-8") as handle:
        return {row["qid"]: row for row in map(json.loads, handle)}


def per_query_beir(rows: dict[str, dict], metric: str) -> dict[str, float]:
    from ranx import Qrels, Run, evaluate

    qrels = Qrels({qid: {d: 1 for d in row["relevant"]} for qid, row in rows.items()})
    run = Run({qid: {d: float(len(row["doc_ids"]) - i) for i, d in enumerate(row["doc_ids"])} for qid, row in rows.items()})
    values = evaluate(qrels, run, metric, return_mean=False)
    return dict(zip(qrels.keys(), (float(v) for v in values)))


def per_query_dpr(rows: dict[str, dict], k: int) -> dict[str, float]:
    return {qid: float(any(row["hits"][:k])) for qid, row in rows.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--metrics", default="ndcg@10,mrr@10,recall@100", help="BEIR metrics (ranx names)")
    parser.add_argument("--top-k", default="1,5,20,100", help="DPR cut-offs")
    args = parser.parse_args(argv)
    from spart.evaluation.metrics import paired_significance

    a, b = read_run(args.a), read_run(args.b)
    if set(a) != set(b):
        raise SystemExit(f"the runs cover different queries ({len(a)} vs {len(b)})")
    beir = "relevant" in next(iter(a.values()))
    if beir:
        measures = [(m, lambda rows, m=m: per_query_beir(rows, m)) for m in args.metrics.split(",")]
    else:
        measures = [(f"top{k}", lambda rows, k=int(k): per_query_dpr(rows, k)) for k in args.top_k.split(",")]
    print(f"A = {args.a.name}\nB = {args.b.name}\n{len(a)} queries")
    print(f"{'metric':<12}{'A':>8}{'B':>8}{'B-A':>9}{'p':>10}   B wins/ties/losses")
    for name, measure in measures:
        va, vb = measure(a), measure(b)
        x = np.array([va[q] for q in sorted(a)])
        y = np.array([vb[q] for q in sorted(a)])
        p = paired_significance(x, y)
        wins, losses = int((y > x).sum()), int((y < x).sum())
        print(f"{name:<12}{x.mean():8.3f}{y.mean():8.3f}{y.mean() - x.mean():+9.3f}{p:10.2g}   "
              f"{wins}/{len(x) - wins - losses}/{losses}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
