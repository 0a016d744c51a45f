"""``spart mine-spans``: mine recurring spans of a corpus for SPIDER pre-training."""

from __future__ import annotations

import argparse
import json
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "mine-spans",
        help="mine recurring spans (SPIDER) from a DPR .tsv or BEIR corpus.jsonl into a .jsonl.gz",
        description=(
            "Mine recurring spans: n-grams that occur in at least two passages of the same document "
            "(documents = consecutive passages sharing a title). Writes one JSON line per document with "
            "clusters {span, occurrences: [[passage_id, token_start, token_end]]}. Resumable: rerun the "
            "same command after an interruption."
        ),
    )
    parser.add_argument("corpus", help="DPR passages .tsv or BEIR corpus.jsonl / directory")
    parser.add_argument("-o", "--output", required=True, help="output .jsonl.gz (stats go to <output>.stats.json)")
    parser.add_argument("--shard", default="0/1", help="mine shard i of n documents (0-based), e.g. 0/4")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="mining processes")
    parser.add_argument("--batch-passages", type=int, default=2048, help="passages per unit of work")
    parser.add_argument("--min-span-length", type=int, default=2, help="shortest span, in tokens")
    parser.add_argument("--max-span-length", type=int, default=10, help="longest span, in tokens (inclusive)")
    parser.add_argument("--min-document-passages", type=int, default=3, help="skip smaller documents")
    parser.add_argument("--min-span-passages", type=int, default=2, help="distinct passages a span must occur in")
    parser.add_argument("--drop-last-passage", action="store_true", help="drop each document's last passage")
    parser.add_argument("--all-spans", action="store_true", help="keep non-maximal spans too")
    parser.add_argument(
        "--title-separator",
        default=None,
        help="document key = title up to this separator (e.g. ' — ' to group pydocs sections by page)",
    )
    parser.add_argument("--no-resume", action="store_true", help="restart instead of resuming a partial run")
    parser.add_argument("--overwrite", action="store_true", help="mine again even if the output exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spart.training.spans import SpanMiningConfig, mine_spans_to_file, parse_shard

    config = SpanMiningConfig(
        min_span_length=args.min_span_length,
        max_span_length=args.max_span_length,
        min_document_passages=args.min_document_passages,
        drop_last_passage=args.drop_last_passage,
        min_span_passages=args.min_span_passages,
        maximal_only=not args.all_spans,
        title_separator=args.title_separator,
    )
    stats = mine_spans_to_file(
        args.corpus,
        args.output,
        config,
        shard=parse_shard(args.shard),
        workers=args.workers,
        batch_passages=args.batch_passages,
        resume=not args.no_resume,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    print(json.dumps(vars(stats)))
    return 0
