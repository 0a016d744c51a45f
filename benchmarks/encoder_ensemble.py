"""Is a second, off-the-shelf encoder a teacher that beats the student? MiniLM and a reference encoder, fused.

ART can only lift a student where its teacher reranks the student's own top-K better than the student does
(docs/adaptation.md). The LM teachers tried on wiki are no better than MiniLM on real trivia questions. This script
measures the cheapest other teacher there is: a second bi-encoder (all-mpnet-base-v2, trained by another recipe)
alone and fused with MiniLM by the per-query z-score interpolation ART's mixed target uses
(:func:`spart.fusion.interpolate_zscores`), reranking MiniLM's top ``K`` exactly as ART's teacher would see it.

No label chooses anything: every weight is printed on both labelled splits (test and train) with the paired
t-test p against MiniLM alone (top-20 for wiki, nDCG@10 for pydocs), so a setting that helps on one split only
shows as such.

    python benchmarks/encoder_ensemble.py --reference $MODELS/all-mpnet-base-v2 --wiki ../shared/data/wiki \\
        --pydocs ../shared/data/pydocs --cache $RUNS/encoder-ensemble
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)  # weight of MiniLM's z-score; 1.0 = MiniLM's own order


def fused_rerank(base: np.ndarray, other: np.ndarray, depth: int, weight: float) -> np.ndarray:
    """Row-number rankings: each query's top ``depth`` by ``base`` reordered by ``(1 - w) z(other) + w z(base)``
    over those candidates (z-scores per query), followed by the rest of ``base``'s top 100 in its order."""
    top = np.argsort(-base, axis=1)[:, : max(depth, 100)]
    cand = top[:, :depth]
    b = np.take_along_axis(base, cand, axis=1).astype(np.float64)
    o = np.take_along_axis(other, cand, axis=1).astype(np.float64)

    def z(x):
        sd = x.std(axis=1, keepdims=True)
        return np.where(sd > 0, (x - x.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1), 0.0)

    mixed = (1.0 - weight) * z(o) + weight * z(b)
    order = np.argsort(-mixed, axis=1, kind="stable")
    return np.concatenate([np.take_along_axis(cand, order, axis=1), top[:, depth:100]], axis=1)


def main(argv=None) -> int:
    import hashlib

    from _frozen_corpus import cached_passage_embeddings, print_splits_table, split_row
    from bench_embedding import cpu_description

    from spart.encoders import DualEncoder
    from spart.encoders.loading import packaged_minilm_path
    from spart.evaluation.datasets import load_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="the second encoder (e.g. all-mpnet-base-v2)")
    parser.add_argument("--wiki", help="DPR data set directory (wiki): trivia test and train")
    parser.add_argument("--pydocs", help="BEIR data set directory (pydocs): test and train")
    parser.add_argument("--depths", default="20,40,100", help="candidate depths to rerank (comma-separated)")
    parser.add_argument("--cache", type=Path, required=True, help="directory for cached embeddings")
    parser.add_argument("--out", type=Path, help="write the results here (JSON)")
    args = parser.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    cpu = cpu_description()
    print(f"# CPU: {cpu['model']}, {cpu['cpus']} CPUs, flags of interest: {' '.join(cpu['key_flags'])}")
    encoders = {
        "base": DualEncoder.load(packaged_minilm_path(), device="cpu"),
        "ref": DualEncoder.load(args.reference, device="cpu"),
    }
    depths = [int(x) for x in args.depths.split(",")]
    results: dict = {"cpu": cpu, "reference": Path(args.reference).name, "sets": {}}

    for name, directory in (("wiki", args.wiki), ("pydocs", args.pydocs)):
        if not directory:
            continue
        splits = {s: load_dataset(directory, s) for s in ("test", "train")}
        passages = list(splits["test"].passages())
        ids, texts, titles = [p.id for p in passages], [p.text for p in passages], [p.title for p in passages]
        key = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12]
        scores: dict = {s: {} for s in splits}
        for label, encoder in encoders.items():
            start = time.perf_counter()
            P = cached_passage_embeddings(encoder, texts, titles, args.cache, "passages", key).astype(np.float32)
            print(f"# {name} {label}: {len(ids)} passages ({time.perf_counter() - start:.0f} s)", flush=True)
            for s, d in splits.items():
                scores[s][label] = encoder.encode_queries([q.text for q in d.queries], batch_size=64) @ P.T

        table = []
        rows = [("MiniLM alone", None, None), ("reference alone (full search)", None, "ref")]
        rows += [(f"K={k} w={w:g}", k, w) for k in depths for w in WEIGHTS if w < 1.0]
        for label, depth, weight in rows:
            row: dict = {"system": label}
            for s, data in splits.items():
                base = scores[s]["base"]
                if depth is None:
                    top = np.argsort(-(scores[s]["ref"] if weight == "ref" else base), axis=1)[:, :100]
                else:
                    top = fused_rerank(base, scores[s]["ref"], depth, weight)
                row[s] = split_row(top, data, ids, texts, ("ndcg@10", "recall@20", "recall@100"))
            table.append(row)
        title = f"{name}: w = MiniLM's weight in the fused score"
        print_splits_table(title, table, [row["system"] for row in table], splits, "MiniLM alone")
        results["sets"][name] = table
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
