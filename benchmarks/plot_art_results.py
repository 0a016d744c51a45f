"""Learning curves of ART runs: full-corpus test metrics (from ``spart eval`` JSON files) and the KL loss vs step.

Usage::

    .venv/bin/python benchmarks/plot_art_results.py --out docs/figures/art-learning-curve.png \\
        --series "pydocs:ART from SPIDER=../runs/art-full/pydocs-from-spider" \\
        --start "pydocs:ART from SPIDER=../runs/art-full/eval/pydocs-spider-128.json" \\
        --ref "pydocs:BM25=0.210" --eval-dir ../runs/art-full/eval

A series ``DATASET:LABEL=RUN_DIR`` takes its points from ``<eval-dir>/<run dir name>-<step>.json`` (one
``spart eval --out`` file per exported step) and its loss from ``RUN_DIR/metrics.csv``; ``--start`` gives the
step-0 point (the initial model's evaluation), ``--ref`` a horizontal reference line (a number or an eval JSON).
The metric is nDCG@10 for BEIR data sets and top-20 accuracy for DPR ones (``--metric DATASET=NAME`` to change).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

DEFAULT_METRICS = {"beir": "ndcg@10", "dpr": "top20"}


def summary(path: Path) -> tuple[str, dict[str, float]]:
    """``(kind, summary)`` of the first system of a ``spart eval --out`` file."""
    data = json.loads(path.read_text())
    return data["kind"], data["systems"][0]["summary"]


def split_spec(spec: str) -> tuple[str, str, str]:
    head, sep, value = spec.partition("=")
    dataset, sep2, label = head.partition(":")
    if not sep or not sep2:
        raise SystemExit(f"expected DATASET:LABEL=VALUE, got {spec!r}")
    return dataset, label, value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", action="append", default=[], help="DATASET:LABEL=RUN_DIR")
    parser.add_argument("--start", action="append", default=[], help="DATASET:LABEL=EVAL_JSON (the step-0 point)")
    parser.add_argument("--ref", action="append", default=[], help="DATASET:LABEL=NUMBER_OR_EVAL_JSON")
    parser.add_argument("--metric", action="append", default=[], help="DATASET=METRIC")
    parser.add_argument("--eval-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric_of = dict(m.split("=", 1) for m in args.metric)
    starts = {(d, label): Path(v) for d, label, v in map(split_spec, args.start)}
    series = [split_spec(s) for s in args.series]
    datasets = list(dict.fromkeys(d for d, _, _ in series))
    fig, axes = plt.subplots(1, len(datasets) + 1, figsize=(4.6 * (len(datasets) + 1), 3.8))
    panels = dict(zip(datasets, axes))
    table = []
    for dataset, label, run_dir in series:
        ax = panels[dataset]
        points = []
        for path in args.eval_dir.glob(f"{Path(run_dir).name}-*.json"):
            match = re.fullmatch(rf"{re.escape(Path(run_dir).name)}-(\d+)\.json", path.name)
            if match:
                kind, values = summary(path)
                points.append((int(match.group(1)), values))
        if (dataset, label) in starts:
            kind, values = summary(starts[(dataset, label)])
            points.append((0, values))
        if not points:
            print(f"no evaluations for {run_dir}", file=sys.stderr)
            continue
        points.sort(key=lambda p: p[0])
        metric = metric_of.get(dataset) or DEFAULT_METRICS[kind]
        ax.plot([s for s, _ in points], [v[metric] for _, v in points], marker="o", label=label)
        ax.set_ylabel(metric)
        table.extend((dataset, label, step, metric, v[metric]) for step, v in points)
        metrics_csv = Path(run_dir) / "metrics.csv"
        if metrics_csv.is_file():
            with open(metrics_csv, newline="") as handle:
                rows = list(csv.DictReader(handle))
            axes[-1].plot([int(r["step"]) for r in rows], [float(r["loss"]) for r in rows], label=f"{dataset}: {label}")
    styles = [
        ("grey", "--"),
        ("tab:green", ":"),
        ("tab:olive", "-."),
        ("tab:purple", "--"),
        ("tab:red", ":"),
        ("tab:brown", "-."),
    ]
    for i, (dataset, label, value) in enumerate(map(split_spec, args.ref)):
        if dataset not in panels:
            continue
        if Path(value).is_file():
            kind, values = summary(Path(value))
            value = values[metric_of.get(dataset) or DEFAULT_METRICS[kind]]
        color, linestyle = styles[i % len(styles)]
        panels[dataset].axhline(float(value), linestyle=linestyle, linewidth=1.2, color=color, label=label)
    for dataset, ax in panels.items():
        ax.set_title(f"{dataset} test (full corpus)")
        ax.set_xlabel("ART step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[-1].set_title("KL(teacher || student), mean per log window")
    axes[-1].set_xlabel("ART step")
    axes[-1].grid(alpha=0.3)
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    for row in table:
        print("{}\t{}\tstep {}\t{} {:.4f}".format(*row))
    print(f"figure: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
