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
import sys
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--metrics", default="ndcg@10,mrr@10,recall@100", help="BEIR metrics (ranx names)")
    parser.add_argument("--top-k", default="1,5,20,100", help="DPR cut-offs")
    args = parser.parse_args(argv)
    from spart.evaluation.runs import read_jsonl
    from spart.evaluation.significance import compare_records

    a, b = read_jsonl(args.a), read_jsonl(args.b)
    beir = bool(a) and "relevant" in a[0]
    metrics = args.metrics.split(",") if beir else [f"top{int(k)}" for k in args.top_k.split(",")]
    try:
        rows = compare_records(a, b, metrics)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    print(f"A = {args.a.name}\nB = {args.b.name}\n{len(a)} queries")
    print(f"{'metric':<12}{'A':>8}{'B':>8}{'B-A':>9}{'p':>10}   B wins/ties/losses")
    for row in rows:
        print(
            f"{row.metric:<12}{row.mean_a:8.3f}{row.mean_b:8.3f}{row.difference:+9.3f}{row.p_value:10.2g}   "
            f"{row.wins}/{row.ties}/{row.losses}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
