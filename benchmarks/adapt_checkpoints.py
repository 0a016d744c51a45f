"""Learning curve of a training run's exported checkpoints: pseudo-dev and a labelled test split per checkpoint.

Each checkpoint is loaded with the base encoder's own lengths (as ``spart adapt``'s selection re-saves it), the
corpus is encoded once, and both question sets are ranked by exact inner product over those embeddings (a ``Flat``
:class:`~spart.index.DenseIndex`),
so one checkpoint costs one corpus encode (``spart adapt``'s select stage builds a store per data set instead).
Pseudo-dev (nDCG@10, the selection objective) is what a label-free run may use; the test split is for the report
only. BEIR test sets give nDCG@10 / R@100, DPR sets top-k accuracy (DPR's answer matching). Results are saved
to ``--out`` after every checkpoint, and a rerun skips checkpoints already there. Without ``--pseudo-dev`` only the
test split is scored. At the end each checkpoint is compared with ``base`` on the test split (paired t-test on
nDCG@10 per query, or on the per-question top-5 / top-20 hits).

Run (from the repo root)::

    python benchmarks/adapt_checkpoints.py --pseudo-dev $RUNS/pydocs/questions --dataset ../shared/data/pydocs \\
        --out curve.json base $RUNS/pydocs-art/art/models/step-00000031

``base`` names the packaged MiniLM (default base encoder); ``--base`` names another base encoder.
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
    parser.add_argument("models", nargs="+", help="checkpoint directories ('base': the base encoder)")
    parser.add_argument(
        "--pseudo-dev", help="the run's questions/ directory (BEIR, split pseudo-dev); omitted: the test split only"
    )
    parser.add_argument("--dataset", required=True, help="labelled data set (DPR or BEIR) on the same corpus")
    parser.add_argument("--split", default="test")
    parser.add_argument("--base", help="the base encoder (default: the packaged MiniLM)")
    parser.add_argument("--out", type=Path, required=True, help="results JSON (resumed)")
    args = parser.parse_args(argv)

    from bench_embedding import cpu_description

    from spart.data import read_passages
    from spart.encoders import DualEncoder
    from spart.encoders.loading import packaged_minilm_path
    from spart.evaluation.answers import hits_for_ranking
    from spart.evaluation.datasets import load_dataset
    from spart.evaluation.metrics import beir_metrics, top_k_accuracy
    from spart.index import DenseIndex

    base_model = args.base or packaged_minilm_path()
    dev = load_dataset(args.pseudo_dev, "pseudo-dev") if args.pseudo_dev else None
    test = load_dataset(args.dataset, args.split)
    passages = list(read_passages(test.corpus_path))
    ids, texts, titles = [p.id for p in passages], [p.text for p in passages], [p.title for p in passages]
    base = DualEncoder.load(base_model, device="cpu").config
    results = json.loads(args.out.read_text()) if args.out.exists() else {"cpu": cpu_description(), "models": {}}
    for model in args.models:
        if model in results["models"]:
            continue
        start = time.perf_counter()
        encoder = DualEncoder.load(
            base_model if model == "base" else model,
            device="cpu",
            passage_max_length=base.passage_max_length,
            query_max_length=base.query_max_length,
        )
        index = DenseIndex(encoder.embedding_dim, "Flat")
        index.add(encoder.encode_passages(texts, titles, batch_size=64, show_progress=True))  # ids = row numbers
        row: dict = {}
        for name, data in (("pseudo_dev", dev), ("test", test)):
            if data is None:
                continue
            _, top = index.search(encoder.encode_queries([q.text for q in data.queries], batch_size=64), 100)
            if data.qrels is not None:
                ranked = {q.id: [ids[j] for j in top[i]] for i, q in enumerate(data.queries)}
                means, per_query = beir_metrics(data.qrels, ranked, ["ndcg@10", "recall@100"])
                row[name] = means
                row[f"{name}_per_query"] = {qid: values["ndcg@10"] for qid, values in per_query.items()}
            else:
                hits = [hits_for_ranking(q.answers, [texts[j] for j in top[i]]) for i, q in enumerate(data.queries)]
                row[name] = {f"top{k}": v for k, v in top_k_accuracy(hits, (1, 5, 20, 100)).items()}
                row[f"{name}_first_hit"] = {
                    q.id: next((r for r, h in enumerate(h_, 1) if h), None) for q, h_ in zip(data.queries, hits)
                }
        row["seconds"] = round(time.perf_counter() - start, 1)
        results["models"][model] = row
        args.out.write_text(json.dumps(results, indent=1))
        print(model, json.dumps(row.get("pseudo_dev")), json.dumps(row["test"]), f"{row['seconds']:.0f} s", flush=True)
    print_p_values(results["models"])
    return 0


def print_p_values(models: dict) -> None:
    """Paired t-test of each model against ``base`` on the test split: nDCG@10 per query (BEIR) or the per-question
    top-5 / top-20 hits (DPR)."""
    from scipy.stats import ttest_rel

    base = models.get("base")
    if base is None:
        return
    for name, row in models.items():
        if name == "base":
            continue
        if "test_per_query" in row:
            qids = sorted(base["test_per_query"])
            a, b = [base["test_per_query"][q] for q in qids], [row["test_per_query"].get(q, 0.0) for q in qids]
            print(f"{name}: p vs base (test nDCG@10) {ttest_rel(b, a).pvalue:.3g}")
        elif "test_first_hit" in row:
            qids = sorted(base["test_first_hit"])
            for k in (5, 20):
                a, b = [_hit(base, q, k) for q in qids], [_hit(row, q, k) for q in qids]
                p = ttest_rel(b, a).pvalue if a != b else 1.0
                print(f"{name}: p vs base (test top-{k}) {p:.3g}")


def _hit(row: dict, qid: str, k: int) -> float:
    first = row["test_first_hit"].get(qid)
    return float(first is not None and first <= k)


if __name__ == "__main__":
    sys.exit(main())
