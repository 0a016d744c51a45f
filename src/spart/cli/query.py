"""``spart query``: ask one question of a store and print the ranked passages with their scores.

Examples::

    spart query "who wrote hamlet?" --store stores/wiki                 # hybrid (dense + BM25, RRF)
    spart query "who wrote hamlet?" --store stores/wiki --retriever bm25 --top-k 10
    spart query "what is a decorator?" --store stores/pydocs --fusion weighted_raw --weights 1 0.05
    spart query "who wrote hamlet?" --store stores/wiki --pipeline my_pipeline.yaml --json

The question is embedded with the model the store was indexed with (recorded by ``spart index``) unless
``--model``/``--method`` say otherwise. For the hybrid pipeline each passage shows its fused score and its
rank and raw score in the dense and BM25 lists.
"""

from __future__ import annotations

import argparse
import json
import sys

from spart.cli.index import add_encoder_arguments, non_negative_int, positive_int

DESCRIPTION = "Retrieve passages for one question from a spart store (bm25, dense or hybrid)."
RETRIEVERS = {"bm25": "bm25_qa", "dense": "dense_qa", "hybrid": "hybrid_qa"}
PGVECTOR_RETRIEVERS = {"dense": "dense_qa_pgvector", "hybrid": "hybrid_qa_pgvector"}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "query",
        help=DESCRIPTION,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 2)[2],
    )
    parser.add_argument("question", help="the question")
    parser.add_argument(
        "--store",
        required=True,
        help="store directory built by 'spart index' (or 'spart demo'), "
        "or a PostgreSQL table built by 'spart index --store postgresql://...#table'",
    )
    parser.add_argument(
        "--retriever", choices=sorted(RETRIEVERS), default="hybrid", help="which pipeline (default hybrid)"
    )
    parser.add_argument("--pipeline", help="a pipeline name or YAML file instead of --retriever")
    parser.add_argument("--top-k", type=positive_int, default=5, help="passages to print (default 5)")
    parser.add_argument("--fusion", help="hybrid fusion mode: rrf, convex_minmax, convex_zscore, weighted_raw")
    parser.add_argument("--weights", type=float, nargs="+", help="fusion weights, one per retriever (dense bm25)")
    add_encoder_arguments(parser)
    parser.add_argument("--width", type=positive_int, default=110, help="characters of passage text per line")
    parser.add_argument(
        "--show-lists",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="also print each retriever's own top N (hybrid)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def pipeline_for(retriever: str, store: str) -> str:
    """The packaged pipeline for a ``--retriever`` choice over ``store`` (a directory or a PostgreSQL URL)."""
    from spart.pipelines.pgvector import is_database_url

    if not is_database_url(store):
        return RETRIEVERS[retriever]
    if retriever not in PGVECTOR_RETRIEVERS:
        raise ValueError(
            f"--retriever {retriever} needs a store directory; over PostgreSQL choose "
            f"{' or '.join(PGVECTOR_RETRIEVERS)}"
        )
    return PGVECTOR_RETRIEVERS[retriever]


def run(args: argparse.Namespace) -> int:
    from spart.cli.index import _quiet_model_loading
    from spart.pipelines import load_pipeline
    from spart.pipelines.display import ask, format_answer

    if not args.question.strip():
        raise ValueError("the question is empty")
    name = args.pipeline or pipeline_for(args.retriever, args.store)
    _quiet_model_loading()
    pipeline = load_pipeline(
        name,
        store=args.store,
        method=args.method,
        model=args.model,
        passage_model=args.passage_model,
        device=None if args.device == "auto" else args.device,
        precision=None if args.precision == "auto" else args.precision,
        fusion=args.fusion,
        weights=args.weights,
    )
    answer = ask(pipeline, args.question, top_k=args.top_k)
    if args.json:
        json.dump(answer.to_dict(show=args.top_k), sys.stdout, indent=2, ensure_ascii=False)
        print()
        return 0
    print(f"question: {args.question}")
    print(format_answer(answer, show=args.top_k, width=args.width, retriever_lists=args.show_lists))
    return 0
