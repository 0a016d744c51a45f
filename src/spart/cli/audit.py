"""``spart audit``: the label-free audit of a base encoder and candidate teachers (see
:mod:`spart.adaptation.audit`).

Examples::

    # on the pseudo-dev split that `spart generate-questions` wrote (no human labels)
    spart audit --dataset runs/pydocs-questions --split pseudo-dev --teacher smollm2 \\
        --teacher qwen=models/qwen2.5-coder-0.5b-instruct --out runs/audit-pseudo.json
    # the same systems on real test labels, with the hybrid weights tuned on pseudo-dev
    spart audit --dataset ../shared/data/pydocs --split test --teacher smollm2 \\
        --fusion-from runs/audit-pseudo.json --out runs/audit-test.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from spart.cli.eval import add_dataset_arguments, load_dataset_from_args
from spart.cli.index import positive_int
from spart.components.embedders.methods import METHODS

DESCRIPTION = (
    "Score the base encoder, BM25, their hybrid and the base reranked by each candidate teacher (alone and "
    "interpolated with the base score) on a data set, and say whether ART with each teacher is expected to help."
)


def parse_weights(text: str) -> tuple[float, ...]:
    try:
        weights = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--weights must be comma-separated numbers, got {text!r}") from None
    if not weights or any(not 0 <= w <= 1 for w in weights):
        raise argparse.ArgumentTypeError(f"--weights must be numbers in [0, 1], got {text!r}")
    return weights


def register(subparsers) -> None:
    from spart.adaptation.audit import DEFAULT_WEIGHTS, TEACHER_PASSAGE_TOKENS

    parser = subparsers.add_parser(
        "audit",
        help=DESCRIPTION.split(", and")[0],
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 2)[2],
    )
    add_dataset_arguments(parser, default_split="pseudo-dev")
    parser.add_argument("--model", help="base dense model (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--method", choices=METHODS, default="spider", help="embedder family of --model")
    parser.add_argument(
        "--teacher",
        action="append",
        default=[],
        metavar="[LABEL=]MODEL",
        help="candidate teacher: LM directory or .gguf ('smollm2' = the packaged default), or an encoder "
        "directory (reranks by inner product); repeatable",
    )
    parser.add_argument("--weights", type=parse_weights, default=DEFAULT_WEIGHTS, help="interpolation weights")
    parser.add_argument("--depth", type=positive_int, default=20, help="candidates each teacher reranks")
    parser.add_argument("--fusion-from", help="an earlier audit JSON whose (pseudo-dev tuned) hybrid weights to use")
    parser.add_argument("--cache", help="teacher score cache (SQLite; share it with ART)")
    parser.add_argument(
        "--max-passage-tokens", type=positive_int, default=TEACHER_PASSAGE_TOKENS, help="teacher passage budget"
    )
    parser.add_argument("--out", help="audit JSON (a Markdown table is written beside it)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spart.adaptation.audit import TeacherSpec, run_audit
    from spart.evaluation.runs import write_json

    dataset = load_dataset_from_args(args)
    fusion = None
    if args.fusion_from:
        fusion = json.loads(Path(args.fusion_from).read_text(encoding="utf-8")).get("fusion")
        if not fusion:
            raise ValueError(f"{args.fusion_from}: no hybrid weights in this file")
    report = run_audit(
        dataset,
        model=args.model,
        method=args.method,
        teachers=[TeacherSpec.parse(t) for t in args.teacher],
        weights=args.weights,
        depth=args.depth,
        fusion=fusion,
        cache_path=args.cache,
        max_passage_tokens=args.max_passage_tokens,
        progress=not args.no_progress,
    )
    table = report.to_markdown()
    print(f"\naudit of {dataset.name} ({len(dataset.queries)} questions)\n\n{table}")
    if args.out:
        out = Path(args.out)
        write_json(out, report.to_dict())
        out.with_suffix(".md").write_text(f"# Audit of {dataset.name}\n\n{table}\n", encoding="utf-8")
        print(f"wrote {out}", file=sys.stderr)
    return 0
