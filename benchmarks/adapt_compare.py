"""The adapted retriever against the encoder the user already had, on real labels, with paired p-values.

Reads a finished ``spart adapt`` run (``--adapt-dir``: ``model/`` and the hybrid fusion tuned on pseudo-dev) and
evaluates, on one labelled data set (BEIR: nDCG@10 / R@100; DPR: top-k accuracy):

- ``base``: the base encoder (default the packaged MiniLM), dense only; every p-value is against this row;
- ``adapted``: the selected model, dense only;
- ``adapted hybrid``: the adapted model fused with BM25, with the fusion ``spart adapt`` tuned on pseudo-dev;
- ``base + LM`` and ``adapted + LM`` (``--teacher``): the top ``--depth`` reranked by the LM's question
  likelihood z-interpolated with the retriever's score (``--weight``; the lists are ``--depth`` long, so only
  cut-offs up to it are comparable);
- each ``--reference LABEL=MODEL`` (e.g. all-mpnet-base-v2), dense only.

Labels are used for this report only; nothing here feeds training, selection or tuning.

Usage::

    python benchmarks/adapt_compare.py --dataset ../shared/data/pydocs --adapt-dir $RUNS/pydocs-pairs \\
        --teacher smollm2 --weight 0.5 --cache $RUNS/pydocs/teacher-scores.sqlite \\
        --reference mpnet=$MODELS/all-mpnet-base-v2 --out adapt-compare-pydocs.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="labelled data set (DPR or BEIR directory)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--adapt-dir", required=True, type=Path, help="a finished spart adapt run")
    parser.add_argument(
        "--adapted", help="evaluate this checkpoint as 'adapted' instead of the run's selected model (report only)"
    )
    parser.add_argument("--base", help="the base encoder the run started from (default: the packaged MiniLM)")
    parser.add_argument("--teacher", help="LM for the rerank rows (smollm2 = the packaged one); none: no rerank")
    parser.add_argument("--weight", type=float, default=0.5, help="retriever-score weight of the rerank rows")
    parser.add_argument("--depth", type=int, default=20, help="candidates reranked")
    parser.add_argument("--cache", help="teacher score cache (SQLite)")
    parser.add_argument("--reference", action="append", default=[], metavar="LABEL=MODEL")
    parser.add_argument("--out", type=Path, help="results JSON")
    args = parser.parse_args(argv)

    from bench_embedding import cpu_description

    from spart.evaluation.datasets import load_dataset
    from spart.evaluation.evaluate import evaluate_pipeline
    from spart.evaluation.loading import load_any_pipeline
    from spart.evaluation.significance import baseline_significance
    from spart.evaluation.stores import ensure_store
    from spart.evaluation.tuning import find_fuser

    state = json.loads((args.adapt_dir / "adapt-state.json").read_text())
    adapted = args.adapted or state["stages"]["select"]["model"]
    if adapted is None:
        print("the run selected the base model: pass --adapted CHECKPOINT to compare one anyway", file=sys.stderr)
        return 1
    hybrid = state["stages"]["hybrid"]
    dataset = load_dataset(args.dataset, args.split)
    beir = dataset.kind == "beir"
    ks = (1, 5, 20, 100)
    results, notes = [], {}

    def dense_args(model):
        store = str(ensure_store(dataset, model=model, progress=False))
        return {"store": store, "model": model} if model else {"store": store}

    def add(label, pipeline, top_k):
        start = time.perf_counter()
        ranks = tuple(k for k in ks if k <= top_k)
        result = evaluate_pipeline(
            pipeline, dataset, system=label, top_k=top_k, depth=top_k, ks=ranks, show_progress=False
        )
        results.append(result)
        notes[label] = {"list_length": top_k, "seconds": round(time.perf_counter() - start, 1)}
        print(label, json.dumps({k: round(v, 4) for k, v in result.summary.items()}), flush=True)

    add("base", load_any_pipeline("dense_qa", **dense_args(args.base)), 100)
    add("adapted", load_any_pipeline("dense_qa", **dense_args(adapted)), 100)
    pipeline = load_any_pipeline("hybrid_qa", **dense_args(adapted))
    _, fuser, _ = find_fuser(pipeline)
    fuser.mode, fuser.weights = hybrid["mode"], list(hybrid["weights"])
    add("adapted hybrid", pipeline, 100)
    if args.teacher:
        model = None if args.teacher in ("smollm2", "default") else args.teacher
        ranker = {"model": model, "cache_path": args.cache, "retriever_weight": args.weight}
        for label, encoder in (("base", args.base), ("adapted", adapted)):
            pipeline = load_any_pipeline("dense_rerank_qa", **dense_args(encoder), components={"ranker": ranker})
            add(f"{label} + LM (w={args.weight:g})", pipeline, args.depth)
    for spec in args.reference:
        label, _, model = spec.partition("=")
        add(label, load_any_pipeline("dense_qa", **dense_args(model)), 100)

    # p-values against the base, each on the metrics both lists support
    tests = {}
    for result in results[1:]:
        sig = baseline_significance([results[0], result], dataset)
        tests[result.system] = sig["p_values"][result.system]
    table = {r.system: r.summary for r in results}
    cpu = cpu_description()
    flags = " ".join(cpu["key_flags"])
    print(f"\n{dataset.name} {args.split}, {len(dataset.queries)} questions; CPU: {cpu['model']}, {flags}")
    metrics = ("ndcg@10", "recall@100") if beir else ("top1", "top5", "top20", "top100")
    print("| system | " + " | ".join(metrics) + " | p vs base (" + metrics[0 if beir else 2] + ") |")
    print("|---" * (len(metrics) + 2) + "|")
    for r in results:
        cells = []
        for m in metrics:
            v = r.summary.get(m)
            cells.append("–" if v is None else (f"{v:.3f}" if beir else f"{100 * v:.1f}"))
        p = tests.get(r.system, {}).get(metrics[0 if beir else 2])
        print(f"| {r.system} | " + " | ".join(cells) + f" | {'' if p is None else f'{p:.3g}'} |")
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "dataset": dataset.name,
                    "split": args.split,
                    "cpu": cpu,
                    "summary": table,
                    "p_values": tests,
                    "notes": notes,
                },
                indent=1,
                default=float,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
