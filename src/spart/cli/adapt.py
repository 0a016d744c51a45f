"""``spart adapt``: adapt a dense retriever to a corpus without labels (see :mod:`spart.adaptation.adapt`).

Example::

    spart adapt --corpus ../shared/data/pydocs/corpus.jsonl --generator models/qwen2.5-coder-0.5b-instruct \\
        --out runs/adapt-pydocs
    # ART instead of fine-tuning on the generated pairs, with two candidate teachers:
    spart adapt --corpus ../shared/data/pydocs/corpus.jsonl --method art --questions my-users-questions.txt \\
        --teacher qwen=models/qwen2.5-coder-0.5b-instruct --teacher smollm2 --out runs/adapt-pydocs-art
    # interrupted? run the same command again: finished stages are skipped, generation and training resume.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from spart.cli.audit import parse_weights
from spart.cli.index import positive_int

DESCRIPTION = (
    "Adapt a dense retriever to a corpus without labels: generate questions, audit the base, BM25 and any teachers "
    "on them, fine-tune the base encoder on the generated pairs (or train ART), select a checkpoint and tune the "
    "hybrid on pseudo-dev, write a rerank pipeline when the audit finds a teacher that helps, and write a report."
)


def parse_base_weight(text: str) -> float | None:
    """``--art-base-weight``: a weight in [0, 1], or ``audit`` (``None``: the audit's pseudo-dev pick)."""
    if text.strip().lower() == "audit":
        return None
    try:
        weight = float(text)
    except ValueError:
        weight = float("nan")
    if not 0 <= weight <= 1:
        raise argparse.ArgumentTypeError(f"--art-base-weight takes one number in [0, 1] or 'audit', got {text!r}")
    return weight


def parse_teacher_temperature(text: str) -> float | str:
    """``--art-teacher-temperature``: a positive number, or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"--art-teacher-temperature takes a positive number or 'auto', got {text!r}")
    return value


def register(subparsers) -> None:
    from spart.adaptation.adapt import METHODS, AdaptOptions
    from spart.adaptation.selection import SELECTION_RULES

    # The defaults are AdaptOptions' own: one place to change them.
    d = AdaptOptions(corpus="", out="")
    parser = subparsers.add_parser(
        "adapt",
        help=DESCRIPTION.split(":")[0],
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 2)[2],
    )
    parser.add_argument("--corpus", required=True, help="DPR passages .tsv or BEIR corpus.jsonl")
    parser.add_argument("--out", required=True, help="run directory (rerun the same command to resume)")
    parser.add_argument("--questions", help="real user questions (no answers): text, DPR QA or BEIR queries file")
    parser.add_argument("--model", help="base encoder (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument(
        "--method",
        choices=METHODS,
        default=None,
        help="pairs: contrastive fine-tuning on the generated (question, passage) pairs; art: ART toward the "
        "teacher the audit picks (default: art when --teacher is given, else pairs; a resumed run keeps its own)",
    )
    parser.add_argument(
        "--teacher",
        action="append",
        default=None,
        metavar="[LABEL=]MODEL",
        help="candidate teacher, audited on pseudo-dev (repeatable): an LM, or an encoder directory scored by "
        "inner product (e.g. a larger sentence-transformers model); --method art distils the best one "
        "(default for art: the packaged SmolLM2)",
    )
    parser.add_argument(
        "--generator", help="LM that writes the questions (default: the first LM teacher, else the packaged SmolLM2)"
    )
    parser.add_argument(
        "--num-passages", type=positive_int, default=d.num_passages, help="passages that get a question"
    )
    parser.add_argument(
        "--generation-batch-size", type=positive_int, default=d.generation_batch_size, help="passages per generate call"
    )
    parser.add_argument(
        "--instruction",
        help="replace the request to the question writer (e.g. quiz-style: describe the answer without naming it)",
    )
    parser.add_argument(
        "--student-view",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show the question writer each passage cut to what the student reads in training (its passage tokens); "
        "--no-student-view: whole passages (default: the student's view for a new run, what a resumed run used)",
    )
    parser.add_argument(
        "--filter-top-k", type=int, default=d.filter_top_k, help="round-trip filter depth (0: keep all)"
    )
    parser.add_argument(
        "--max-dev",
        type=int,
        default=d.max_dev_questions,
        help="at most this many pseudo-dev questions (0: no cap); the audit reranks each one's candidates",
    )
    parser.add_argument("--weights", type=parse_weights, default=d.weights, help="audit weights")
    parser.add_argument("--depth", type=positive_int, default=d.depth, help="candidates reranked in the audit")
    parser.add_argument("--steps", type=positive_int, help="training steps (default: --epochs over the data)")
    parser.add_argument("--epochs", type=float, help="passes over the training data (default: pairs 3, art 2)")
    parser.add_argument("--batch-size", type=positive_int, help="questions per step (default: pairs 32, art 16)")
    parser.add_argument("--top-k", type=positive_int, default=d.top_k, help="passages per question in ART")
    parser.add_argument(
        "--reindex-every",
        type=int,
        default=d.reindex_every,
        help="ART: re-embed the corpus every N steps (default 0: embedded once by the base encoder)",
    )
    parser.add_argument(
        "--art-base-weight",
        type=parse_base_weight,
        default=d.art_base_weight,
        help="ART target = (1-w) z(teacher) + w z(base): w (default 0.5), or 'audit' for the audit's pseudo-dev pick",
    )
    parser.add_argument(
        "--art-teacher-temperature",
        type=parse_teacher_temperature,
        default=d.art_teacher_temperature,
        help="ART: the target's softmax temperature, or 'auto' (default): as confident as the base student at step 0",
    )
    parser.add_argument(
        "--fixed-candidates",
        action="store_true",
        help="ART: each question's candidates are the base model's top K, searched once (needs --reindex-every 0)",
    )
    parser.add_argument(
        "--query-tower-only",
        action="store_true",
        help="ART: train a separate query tower and keep the base as the passage tower (needs --reindex-every 0)",
    )
    parser.add_argument("--lr", type=float, default=d.lr, help="learning rate")
    parser.add_argument(
        "--passage-max-length", type=positive_int, help="passage tokens in training (default: the base model's)"
    )
    parser.add_argument(
        "--exports",
        type=positive_int,
        default=d.exports,
        help="checkpoints scored for selection (each re-encodes the corpus)",
    )
    parser.add_argument(
        "--select",
        choices=SELECTION_RULES,
        default=d.select,
        help="checkpoint selection on pseudo-dev: 'latest' (default) keeps the end of training unless an earlier "
        "checkpoint is significantly better or the base at least as good; 'best' keeps the highest pseudo-dev nDCG@10",
    )
    parser.add_argument(
        "--train-budget",
        type=float,
        metavar="MINUTES",
        help="stop training at the first step past this many minutes; selection chooses among the steps reached",
    )
    parser.add_argument(
        "--report-dataset",
        help="a labelled data set scored per checkpoint and with each written pipeline, for the report only (the "
        "rerank pipeline costs one LM pass per candidate of each of its questions)",
    )
    parser.add_argument("--report-split", default=d.report_split, help="its split")
    parser.add_argument(
        "--train-anyway", action="store_true", help="train even when the audit says no teacher would help"
    )
    parser.add_argument(
        "--expander",
        metavar="LM",
        help="an instruct LM that answers each question at query time: writes expand_qa.yaml (GAR / HyDE), "
        "measured on --report-dataset only",
    )
    parser.add_argument(
        "--expander-instruction", help="its request, with {question} (default: 'Answer this question in a few words.')"
    )
    parser.add_argument(
        "--expander-tokens", type=positive_int, default=d.expander_max_new_tokens, help="longest expander answer"
    )
    parser.add_argument("--seed", type=int, default=d.seed, help="seed of sampling, splits and training")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spart.adaptation.adapt import Adaptation, AdaptOptions

    options = AdaptOptions(
        corpus=args.corpus,
        out=args.out,
        questions=args.questions,
        model=args.model,
        method=args.method,
        teachers=args.teacher or [],
        generator=args.generator,
        num_passages=args.num_passages,
        instruction=args.instruction,
        student_view=args.student_view,
        filter_top_k=args.filter_top_k,
        max_dev_questions=args.max_dev or None,
        generation_batch_size=args.generation_batch_size,
        weights=args.weights,
        depth=args.depth,
        steps=args.steps,
        epochs=args.epochs,
        batch_size=args.batch_size,
        top_k=args.top_k,
        reindex_every=args.reindex_every,
        fixed_candidates=args.fixed_candidates,
        query_tower_only=args.query_tower_only,
        art_base_weight=args.art_base_weight,
        art_teacher_temperature=args.art_teacher_temperature,
        lr=args.lr,
        passage_max_length=args.passage_max_length,
        train_budget_minutes=args.train_budget,
        exports=args.exports,
        select=args.select,
        report_dataset=args.report_dataset,
        report_split=args.report_split,
        seed=args.seed,
        train_anyway=args.train_anyway,
        expander=args.expander,
        expander_instruction=args.expander_instruction,
        expander_max_new_tokens=args.expander_tokens,
        progress=not args.no_progress,
    )
    state = Adaptation(options).run()
    print(json.dumps({k: v.get("seconds") for k, v in state["stages"].items()}), file=sys.stderr)
    print(f"report: {state['stages']['report']['report']}")
    rerank = state["stages"].get("rerank", {})
    if rerank and not rerank.get("skipped"):
        path = Path(args.out) / "rerank_qa.yaml"
        print(f"rerank pipeline ({rerank['teacher']}, base-score weight {rerank['weight']:g}): {path}")
    expand = state["stages"].get("expand", {})
    if expand and not expand.get("skipped"):
        print(f"query expansion pipeline ({expand['expander']}): {Path(args.out) / expand['pipeline']}")
    return 0
