"""``spart serve``: serve pipelines over a store as a REST API (hayhooks) with a search page.

Examples::

    spart serve --store stores/wiki                          # bm25_qa, dense_qa, hybrid_qa on 127.0.0.1:1416
    spart serve --store "$(scripts/postgres.sh url)#pydocs"  # dense_qa_pgvector, hybrid_qa_pgvector
    spart serve --store stores/wiki --pipeline hybrid_qa --pipeline my_pipeline.yaml --port 8000

Open http://127.0.0.1:1416/ for the search page, /docs for the API. ``POST /<pipeline>/run`` with
``{"query": "who wrote hamlet?", "top_k": 5}`` returns the ranked passages; ``GET /status`` is the health check.
Pipelines are loaded and warmed up before the server listens, so a bad store fails at once.
"""

from __future__ import annotations

import argparse
import sys

from spart.cli.index import add_encoder_arguments, positive_int

DESCRIPTION = "Serve retrieval pipelines over REST (hayhooks) with a search page."


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help=DESCRIPTION,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 2)[2],
    )
    parser.add_argument(
        "--store",
        required=True,
        help="store directory built by 'spart index' (or 'spart demo'), or postgresql://...#table",
    )
    parser.add_argument(
        "--pipeline",
        action="append",
        default=None,
        metavar="NAME_OR_YAML",
        help="a packaged pipeline or YAML file to serve (repeatable; default: bm25_qa, dense_qa, "
        "hybrid_qa, or the *_pgvector pair for a PostgreSQL store)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=positive_int, default=1416, help="port (default 1416)")
    parser.add_argument("--fusion", help="fusion mode of the hybrid pipelines")
    parser.add_argument("--weights", type=float, nargs="+", help="fusion weights, one per retriever")
    add_encoder_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from spart._extras import require

    os.environ.setdefault("HAYHOOKS_LOG_LEVEL", "WARNING")  # read when hayhooks is imported
    require("hayhooks", "serve")
    from spart.cli.index import _quiet_model_loading
    from spart.serving.app import create_app, default_pipelines, serve

    _quiet_model_loading()
    load_kwargs = {
        "store": args.store,
        "method": args.method,
        "model": args.model,
        "passage_model": args.passage_model,
        "device": None if args.device == "auto" else args.device,
        "precision": None if args.precision == "auto" else args.precision,
    }
    names = args.pipeline or default_pipelines(args.store)
    pipelines = {}
    for name in names:
        kwargs = dict(load_kwargs)
        if "hybrid" in str(name):
            kwargs.update(fusion=args.fusion, weights=args.weights)
        pipelines[name] = kwargs
    app = create_app(pipelines)
    print(
        f"serving {', '.join(app.state.spart_wrappers)} on http://{args.host}:{args.port}/ "
        f"(API: /docs, health: /status)",
        file=sys.stderr,
        flush=True,
    )
    serve(app, host=args.host, port=args.port)
    return 0
