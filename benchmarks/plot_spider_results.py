"""Learning curves of the CPU SPIDER runs: pool metrics (from spider_pool_eval.py) and training loss vs step.

Usage::

    .venv/bin/python benchmarks/plot_spider_results.py --eval ../runs/spider-pool-eval.json \\
        --run minilm=../runs/spider-minilm --run random=../runs/spider-random \\
        --out docs/figures/spider-learning-curve.png

Evaluation entries named ``<run>@<step>`` (e.g. ``minilm@25``) give the curve points; ``bm25`` is drawn as
a horizontal reference.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, required=True)
    parser.add_argument("--run", action="append", default=[], help="name=run_dir")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--alias",
        action="append",
        default=[],
        help="point=entry: use evaluation entry `entry` as curve point `point` (e.g. minilm@0=init-cls)",
    )
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = json.loads(args.eval.read_text())
    for alias in args.alias:
        point, entry = alias.split("=", 1)
        if entry in results:
            results[point] = results[entry]
    runs = dict(r.split("=", 1) for r in args.run)
    panels = [
        ("pydocs", "mrr@10", "pydocs test: MRR@10 (pool)"),
        ("trivia", "top1", "trivia test: top-1 acc. (BM25 top-5 re-ranked)"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (dataset, metric, title) in zip(axes, panels):
        for name in runs:
            points = sorted(
                (int(key.split("@")[1]), value[dataset][metric])
                for key, value in results.items()
                if key.startswith(name + "@")
            )
            if points:
                ax.plot(*zip(*points), marker="o", label=f"SPIDER from {name}")
        if "bm25" in results and dataset == "trivia":  # on pydocs BM25 is not comparable on the pool (see docs)
            ax.axhline(results["bm25"][dataset][metric], color="grey", linestyle="--", label="BM25 (same pool)")
        if "random@0" in results:
            ax.axhline(
                results["random@0"][dataset][metric],
                color="black",
                linestyle=":",
                linewidth=0.8,
                label="untrained random BERT (chance-like)",
            )
        if "init-mean" in results:
            ax.axhline(
                results["init-mean"][dataset][metric],
                color="tab:green",
                linestyle=":",
                label="MiniLM as packaged (mean)",
            )
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    for name, run_dir in runs.items():
        with open(Path(run_dir) / "metrics.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        axes[2].plot([int(r["step"]) for r in rows], [float(r["loss"]) for r in rows], label=name)
    axes[2].set_title("training loss (mean over log window)")
    axes[2].set_xlabel("step")
    axes[2].grid(alpha=0.3)
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"figure: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
