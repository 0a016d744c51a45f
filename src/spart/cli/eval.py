"""``spart eval``: evaluate one or more retrieval pipelines on a DPR or BEIR data set.

Examples::

    spart eval --pipeline bm25_qa --pipeline dense_qa --pipeline hybrid_qa \\
        --dataset ../shared/data/wiki --split test --out results/wiki.json --plot results/wiki.png
    spart eval --pipeline my_hybrid.yaml --dataset ../shared/data/pydocs --split test
    spart eval --pipeline bm25_qa --corpus passages.tsv --qa trivia-test.csv

Unless ``--store`` is given, the corpus is indexed once into a cached store (``$SPART_CACHE/stores``) with
the dense model (``--model``; without it, the model the pipeline's text embedder names, as in the pipelines
``spart adapt`` writes, else the packaged MiniLM); passage embeddings are cached too, so a second run encodes
only the questions.

Prints one table with the systems side by side; ``--out`` writes the summaries, curves and paired
significance tests as JSON, and per-query runs as ``<out stem>.<system>.jsonl`` next to it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from spart.cli.index import positive_int
from spart.components.embedders.methods import METHODS

DESCRIPTION = "Evaluate retrieval pipelines on a DPR (top-k accuracy) or BEIR (nDCG/Recall/MRR) data set."


def parse_ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--top-k must be comma-separated integers, got {text!r}") from None
    if not ks or any(k <= 0 for k in ks):
        raise argparse.ArgumentTypeError(f"--top-k values must be positive, got {text!r}")
    return tuple(sorted(set(ks)))


def parse_override(text: str) -> tuple[str, Any]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set expects KEY=VALUE, got {text!r}")
    return key, yaml.safe_load(value)


def add_override_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE`` (repeatable): overrides passed to the pipeline loader, collected in ``args.overrides``."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        type=parse_override,
        default=[],
        metavar="KEY=VALUE",
        help=help,
    )


def add_dataset_arguments(parser: argparse.ArgumentParser, default_split: str = "test") -> None:
    group = parser.add_argument_group("data set (a directory, or explicit files)")
    group.add_argument("--dataset", help="DPR directory (passages.tsv + <name>-<split>.csv) or BEIR directory")
    group.add_argument("--split", default=default_split, help=f"question split (default {default_split})")
    group.add_argument("--corpus", help="passages .tsv / corpus .jsonl (overrides the directory's)")
    group.add_argument("--qa", help="DPR QA file: question<TAB>[answers]")
    group.add_argument("--queries", help="BEIR queries.jsonl")
    group.add_argument("--qrels", help="BEIR qrels .tsv")
    group.add_argument("--match", choices=("string", "regex"), default="string", help="DPR answer matching")


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("document store and dense model")
    group.add_argument(
        "--store",
        help="FaissDocumentStore directory (default: built and cached for the corpus), "
        "or postgresql://...#table for the *_pgvector pipelines",
    )
    group.add_argument(
        "--model",
        help="dense model directory (default: the one the pipeline's text embedder names, else the packaged "
        "all-MiniLM-L6-v2)",
    )
    group.add_argument("--passage-model", help="separate passage tower directory, if any")
    group.add_argument("--method", choices=METHODS, default="spider", help="embedder family (default spider)")
    group.add_argument("--cache-dir", help="cache root (default $SPART_CACHE or ~/.cache/spart)")


def pipeline_overrides(args: argparse.Namespace, dataset, spec: str | None = None, stores: dict | None = None):
    """The loader overrides for one pipeline: the store (built if needed), model, method, --set.

    Without ``--store`` and ``--model`` the corpus is indexed with the model the pipeline's text embedder names
    (:func:`~spart.evaluation.loading.text_embedder_model`; the packaged MiniLM when it names none), so a
    pipeline written for an adapted model is scored over that model's index. ``stores`` memoises the stores
    built for one call (several pipelines may share one).
    """
    from spart.evaluation.loading import text_embedder_model
    from spart.evaluation.stores import ensure_store

    named = text_embedder_model(spec) if spec is not None and not (args.store or args.model) else None
    if named is not None:
        key = (named["model"], named["method"], named["passage_model"])
    else:
        key = (args.model, args.method, args.passage_model)
    stores = {} if stores is None else stores
    if args.store:
        store = args.store
    elif key in stores:
        store = stores[key]
    else:
        store = stores[key] = ensure_store(
            dataset,
            model=key[0],
            method=key[1],
            passage_model=key[2],
            cache_dir=args.cache_dir,
            progress=not args.no_progress,
        )
    overrides: dict[str, Any] = {"store": str(store)}
    # A store built here records its embedder, and the loader gives the pipeline's text embedder the same
    # model; an explicit --store may not, so the model is then passed on as well.
    if args.store and args.model:
        overrides.update(model=args.model, method=args.method)
        if args.passage_model:
            overrides["passage_model"] = args.passage_model
    overrides.update(dict(args.overrides))
    return overrides


def load_for_eval(spec: str, overrides: dict[str, Any]):
    """Load one pipeline; model overrides are dropped for pipelines without a text embedder (e.g. BM25), and
    ``components`` overrides for components this pipeline does not have (:func:`check_component_overrides` makes
    sure each applies to one of the systems)."""
    from spart.evaluation.loading import component_names, has_text_embedder, load_any_pipeline

    if "model" in overrides and not has_text_embedder(spec):
        overrides = {k: v for k, v in overrides.items() if k not in ("model", "method", "passage_model")}
    names = component_names(spec) if overrides.get("components") else None
    if names is not None:
        overrides = dict(overrides, components={k: v for k, v in overrides["components"].items() if k in names})
    return load_any_pipeline(spec, **overrides)


def check_component_overrides(specs: list[str], overrides: dict[str, Any]) -> None:
    """``--set components=...`` must name components of at least one evaluated pipeline (a typo is an error)."""
    from spart.evaluation.loading import component_names

    wanted = overrides.get("components") or {}
    if not isinstance(wanted, dict):
        raise ValueError(f"--set components= expects a mapping of component name to init parameters, got {wanted!r}")
    known: set[str] = set()
    for spec in specs:
        names = component_names(spec)
        if names is None:
            return  # the loader reports what does not apply
        known |= names
    missing = sorted(set(wanted) - known)
    if missing:
        raise ValueError(
            f"--set components names {missing}, which no evaluated pipeline has; they have {sorted(known)}"
        )


def load_dataset_from_args(args: argparse.Namespace):
    from spart.evaluation.datasets import load_dataset

    if not any([args.dataset, args.corpus, args.qa, args.queries, args.qrels]):
        raise ValueError("give --dataset (or --corpus with --qa, or --corpus with --queries and --qrels)")
    return load_dataset(
        args.dataset,
        args.split,
        corpus=args.corpus,
        qa=args.qa,
        queries=args.queries,
        qrels=args.qrels,
        match_type=args.match,
    )


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help=DESCRIPTION,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 2)[2],
    )
    parser.add_argument(
        "--pipeline",
        action="append",
        required=True,
        metavar="[LABEL=]NAME_OR_YAML",
        help="pipeline to evaluate (repeat for several systems)",
    )
    add_override_argument(parser, "override passed to every pipeline's loader (repeatable)")
    add_dataset_arguments(parser)
    add_store_arguments(parser)
    parser.add_argument(
        "--top-k", type=parse_ks, default=(1, 5, 20, 100), help="accuracy cut-offs (default 1,5,20,100)"
    )
    parser.add_argument(
        "--depth",
        type=positive_int,
        default=None,
        help="documents per query: the final list's length (top_k) and the candidates each retriever "
        "returns (depth), so a rerank pipeline scores this many: one LM pass each "
        "(default: largest --top-k, at least 100)",
    )
    parser.add_argument(
        "--metrics", default="ndcg@10,recall@20,recall@100,mrr@10,map", help="BEIR metrics (ranx names)"
    )
    parser.add_argument("--out", help="results JSON (per-query JSONL files are written beside it)")
    parser.add_argument("--plot", help="PNG of top-k accuracy / Recall@k curves, one line per system")
    parser.add_argument(
        "--stat-test", default="student", choices=("student", "fisher", "wilcoxon"), help="paired test between systems"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=run)


def format_table(results) -> str:
    """Systems as rows, metrics as columns (percentages for DPR accuracy)."""
    metrics = list(dict.fromkeys(m for r in results for m in r.summary))
    name_width = max(len("system"), *(len(r.system) for r in results))
    header = f"{'system':<{name_width}}  " + "  ".join(f"{m:>10}" for m in metrics)
    lines = [header, "-" * len(header)]
    for r in results:
        cells = []
        for m in metrics:
            v = r.summary.get(m)
            cells.append(f"{'-':>10}" if v is None else (f"{100 * v:>9.1f}%" if r.kind == "dpr" else f"{v:>10.4f}"))
        lines.append(f"{r.system:<{name_width}}  " + "  ".join(cells))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from spart.evaluation.evaluate import evaluate_pipeline
    from spart.evaluation.loading import split_label
    from spart.evaluation.plots import plot_topk_curves
    from spart.evaluation.runs import write_json
    from spart.evaluation.significance import baseline_significance

    dataset = load_dataset_from_args(args)
    depth = args.depth if args.depth is not None else max(100, max(args.top_k))
    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    labels = [split_label(spec) for spec in args.pipeline]
    if len({label for label, _ in labels}) != len(labels):
        raise ValueError(f"systems need distinct labels, got {[label for label, _ in labels]}; use LABEL=PIPELINE")
    check_component_overrides([spec for _, spec in labels], dict(args.overrides))  # before building a store
    stores: dict = {}
    overrides = {spec: pipeline_overrides(args, dataset, spec, stores) for _, spec in labels}
    out = Path(args.out) if args.out else None
    print(
        f"data set {dataset.name}: {dataset.kind}, {len(dataset.queries)} questions, corpus {dataset.corpus_path}",
        file=sys.stderr,
    )
    results = []
    for label, spec in labels:
        pipeline = load_for_eval(spec, overrides[spec])
        per_query = str(out.with_name(f"{out.stem}.{label}.jsonl")) if out else None
        results.append(
            evaluate_pipeline(
                pipeline,
                dataset,
                system=label,
                top_k=depth,
                depth=depth,
                ks=args.top_k,
                metrics=metrics,
                per_query_path=per_query,
                show_progress=not args.no_progress,
            )
        )
    print(f"\n{dataset.name} ({len(dataset.queries)} questions)")
    print(format_table(results))
    tests = baseline_significance(results, dataset, args.stat_test)
    if tests:
        print(f"\npaired {tests['test']} test against {tests['baseline']} (p-values):")
        for system, values in tests["p_values"].items():
            print(f"  {system}: " + "  ".join(f"{m}={p:.3g}" for m, p in values.items()))
    if out:
        payload = {
            "dataset": dataset.name,
            "kind": dataset.kind,
            "files": dataset.files,
            "depth": depth,
            "systems": [dict(r.to_dict(), pipeline=spec) for r, (_, spec) in zip(results, labels)],
            "significance": tests,
        }
        write_json(out, payload)
        print(f"wrote {out}", file=sys.stderr)
    if args.plot:
        plot_topk_curves(results, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
