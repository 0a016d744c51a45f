"""``spart tune-fusion``: choose a hybrid pipeline's fusion mode and weights on a dev split.

Examples::

    spart tune-fusion --pipeline hybrid_qa --dataset ../shared/data/wiki --split train --out tuning.json
    spart eval --pipeline hybrid_qa --set fusion=convex_minmax --set weights=[0.4,0.6] \\
        --dataset ../shared/data/wiki --split test

The pipeline runs once on the dev questions; every candidate is then scored offline with the same fusion
function the fuser uses. ``--split test`` is refused: weights picked on the reported set flatter it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spart.atomic import write_text_atomic
from spart.cli.eval import (
    add_dataset_arguments,
    add_override_argument,
    add_store_arguments,
    load_dataset_from_args,
    load_for_eval,
    pipeline_overrides,
)
from spart.cli.index import positive_int

DESCRIPTION = "Tune a hybrid pipeline's fusion (RRF / convex α / dense + λ·bm25) on a dev split, never on test."


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "tune-fusion",
        help=DESCRIPTION,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 2)[2],
    )
    parser.add_argument(
        "--pipeline", required=True, help="hybrid pipeline (spart name or YAML) with one HybridScoreFuser"
    )
    add_override_argument(parser, "override passed to the pipeline loader (repeatable)")
    add_dataset_arguments(parser, default_split="train")
    add_store_arguments(parser)
    parser.add_argument("--modes", default="rrf,convex_minmax,convex_zscore,weighted_raw", help="fusion modes to try")
    parser.add_argument("--objective", help="metric to maximise (default top20 for DPR, ndcg@10 for BEIR)")
    parser.add_argument(
        "--depth",
        type=positive_int,
        default=100,
        help="documents per retriever list and in the fused list (default 100)",
    )
    parser.add_argument("--fuser", help="fuser component name, if the pipeline has several")
    parser.add_argument("--out", help="JSON with every candidate's dev scores and the best setting")
    parser.add_argument("--save-pipeline", help="write the pipeline with the tuned fuser as YAML")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spart.evaluation.runs import write_json
    from spart.evaluation.tuning import tune_fusion

    dataset = load_dataset_from_args(args)
    pipeline = load_for_eval(args.pipeline, pipeline_overrides(args, dataset, args.pipeline))
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    result = tune_fusion(
        pipeline,
        dataset,
        modes=modes,
        objective=args.objective,
        top_k=args.depth,
        fuser_name=args.fuser,
        show_progress=not args.no_progress,
    )
    questions = len(dataset.queries)
    print(f"tuned {result.fuser} on {dataset.name} ({questions} questions), objective {result.objective_metric}")
    best_per_mode = {}
    for c in result.candidates:
        if c.mode not in best_per_mode or c.objective > best_per_mode[c.mode].objective:
            best_per_mode[c.mode] = c
    for mode, c in best_per_mode.items():
        print(f"  best {mode:<14} weights={c.weights}  {result.objective_metric}={c.objective:.4f}")
    print(f"chosen: mode={result.best.mode} weights={result.best.weights} (lists {result.input_lists})")
    if args.out:
        write_json(args.out, dict(result.to_dict(), pipeline=args.pipeline, dataset=dataset.name, files=dataset.files))
        print(f"wrote {args.out}", file=sys.stderr)
    if args.save_pipeline:
        target = Path(args.save_pipeline)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, pipeline.dumps())
        print(f"wrote {target}", file=sys.stderr)
    return 0
