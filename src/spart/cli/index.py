"""``spart index``: embed a corpus into a document store directory (dense + BM25, one directory).

Examples::

    spart index ../shared/data/wiki/passages.tsv --store stores/wiki
    spart index ../shared/data/pydocs --store stores/pydocs --method art --model path/to/art-model
    spart index passages.tsv --store stores/sample --limit 1000 --batch-size 64 --overwrite

The corpus is streamed: passages are read, embedded and written ``--chunk-size`` at a time, and the store is
swapped into place only when complete (an interrupted run leaves any previous store intact). Without
``--model`` the packaged all-MiniLM-L6-v2 is used (no trained SPIDER/ART model ships yet). Query the store
with ``spart query`` or ``spart.pipelines.load_pipeline(..., store=<dir>)``; both embed questions with the
model recorded at index time.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

from spart.components.embedders.methods import METHODS

DESCRIPTION = "Embed a DPR passages TSV or BEIR corpus into a spart document store directory."


def _int_at_least(minimum: int, what: str):
    """An argparse ``type`` that accepts integers >= ``minimum`` and names the option's problem otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


positive_int = _int_at_least(1, "a positive integer")
non_negative_int = _int_at_least(0, "a non-negative integer")


def add_encoder_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that choose and configure the dense encoder (shared by index, query and demo)."""
    group = parser.add_argument_group("dense encoder")
    group.add_argument(
        "--method",
        choices=METHODS,
        default=None,
        help="SPIDER (shared tower) or ART (separate towers) embedders (default: spider)",
    )
    group.add_argument("--model", help="model directory or hub id (default: the packaged all-MiniLM-L6-v2)")
    group.add_argument("--passage-model", help="separate passage-tower directory (two-tower models)")
    group.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:0...")
    group.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16"),
        help="auto = bf16 autocast where the hardware runs it natively",
    )


def count_passages(path: Path) -> int | None:
    """Number of passages in a corpus file, counted cheaply (lines), for the progress bar; None if unknown."""
    file = path / "corpus.jsonl" if path.is_dir() else path
    if not file.is_file():
        return None
    with file.open("rb") as handle:
        lines = sum(1 for line in handle if line.strip())
    return max(lines - 1, 0) if file.suffix.lower() == ".tsv" else lines


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "index",
        help=DESCRIPTION,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 2)[2],
    )
    parser.add_argument("corpus", help="DPR passages .tsv (id, text, title), BEIR corpus .jsonl or BEIR directory")
    parser.add_argument(
        "--store",
        required=True,
        help="store directory to create, or a PostgreSQL + pgvector table: postgresql://...#table",
    )
    add_encoder_arguments(parser)
    parser.add_argument(
        "--backend",
        default="auto",
        # spart.encoders.backends.BACKENDS (that module loads torch)
        choices=("auto", "torch", "onnx", "openvino", "openvino-int8"),
        help="what runs the encoder: auto (default: the fastest of torch and the installed runtimes on this "
        "machine where bf16 is not native), torch, onnx (needs pip install 'spart[onnx]'), openvino (needs "
        "pip install 'spart[openvino]') or openvino-int8 (8-bit weights and activations, cosine >= 0.999 to "
        "fp32 checked at export; opt-in); the store records it for the query side",
    )
    parser.add_argument("--batch-size", type=positive_int, default=32, help="passages per forward pass (default 32)")
    parser.add_argument(
        "--chunk-size",
        type=positive_int,
        default=256,
        help="passages read, embedded and written per step (default 256)",
    )
    parser.add_argument("--passage-max-length", type=positive_int, help="token budget of 'title [SEP] text'")
    parser.add_argument("--limit", type=positive_int, help="index only the first N passages")
    parser.add_argument("--factory", default="Flat", help="FAISS index factory string (default Flat = exact)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing store (or table) at --store")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spart.components.embedders.methods import embedder_class
    from spart.data.readers import passages_to_documents, read_passages
    from spart.pipelines import build_store
    from spart.pipelines.pgvector import is_database_url

    corpus = Path(args.corpus)
    if not corpus.exists():
        raise FileNotFoundError(f"corpus not found: {corpus}")
    store = args.store if is_database_url(args.store) else Path(args.store)
    if isinstance(store, Path) and store.exists() and not args.overwrite:
        raise ValueError(f"{store} already exists; pass --overwrite to replace it")
    cls = embedder_class(args.method or "spider", "document")
    embedder = cls(
        model=args.model,
        passage_model=args.passage_model,
        device=args.device,
        precision=args.precision,
        backend=args.backend,
        passage_max_length=args.passage_max_length,
        batch_size=args.batch_size,
        progress_bar=False,
    )
    total = count_passages(corpus)
    passages = read_passages(corpus)
    if args.limit is not None:
        passages = itertools.islice(passages, args.limit)
        total = args.limit if total is None else min(total, args.limit)
    _quiet_model_loading()
    print(
        f"indexing {corpus} into {store} with {cls.__name__}({args.model or 'packaged all-MiniLM-L6-v2'})",
        file=sys.stderr,
    )
    info = build_store(
        passages_to_documents(passages),
        store,
        embedder,
        total=total,
        chunk_size=args.chunk_size,
        factory=args.factory,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        corpus_info={"path": str(corpus.resolve()), "limit": args.limit},
    )
    print(
        f"indexed {info['documents']} passages in {info['seconds']:.1f} s "
        f"({info['passages_per_second']} passages/s) -> {store}"
    )
    return 0


def _quiet_model_loading() -> None:
    """Hide transformers' per-load weight progress bars; the command shows its own progress."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass
