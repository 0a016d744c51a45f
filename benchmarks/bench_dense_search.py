"""Dense search speed: spart's FaissEmbeddingRetriever vs Haystack's InMemoryEmbeddingRetriever.

Both stores hold the same documents (the wiki passages, and the 10x corpus from ``_corpus.scale_corpus``)
with the same random unit-norm 384-d embeddings (seeded; the dimension of all-MiniLM-L6-v2). Queries are
random unit vectors, one per ``run()`` call, top 10, inner product (Haystack's default ``dot_product``).
spart's exact ``Flat`` results are checked against Haystack's; an ``HNSW32`` store is also timed, with its
recall@10 against the exact lists (random vectors are a hard case for graph indexes, so this is a floor).
Haystack is time-boxed to ``--budget`` seconds per scale.

Run (from the repo root)::

    nice -n 10 .venv/bin/python benchmarks/bench_dense_search.py --scales 1 10 --budget 30
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import load_passages, scale_corpus  # noqa: E402
from bench_bm25 import time_queries  # noqa: E402

DIM = 384


def unit_vectors(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def run_scale(passages, args) -> dict:
    from haystack import Document
    from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    from spart.components.document_stores import FaissDocumentStore
    from spart.components.retrievers import FaissEmbeddingRetriever

    emb = unit_vectors(len(passages), seed=1)
    queries = [q.tolist() for q in unit_vectors(args.queries, seed=2)]
    docs = [
        Document(id=pid, content=text, meta={"title": title}, embedding=emb[i].tolist())
        for i, (pid, text, title) in enumerate(passages)
    ]
    del emb
    out: dict = {"documents": len(docs), "queries": len(queries), "dim": DIM}

    exact_ids = None
    for factory in args.factories:
        t = time.perf_counter()
        store = FaissDocumentStore(embedding_dim=DIM, factory=factory, ef_search=args.ef_search)
        store.write_documents(docs)
        out[f"spart_{factory}_write_s"] = time.perf_counter() - t
        retriever = FaissEmbeddingRetriever(store, top_k=10)
        retriever.run(query_embedding=queries[0])
        qps, n, res = time_queries(
            lambda q, retriever=retriever: retriever.run(query_embedding=q)["documents"], queries, 1e9, 0
        )
        out[f"spart_{factory}_qps"] = qps
        ids = [[d.id for d in r] for r in res]
        if exact_ids is None:
            exact_ids = ids
        else:
            out[f"spart_{factory}_recall@10"] = float(
                np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact_ids)])
            )
        print(f"  spart FaissEmbeddingRetriever[{factory}]: {qps:9.1f} q/s over {n} queries", flush=True)
        del store, retriever

    t = time.perf_counter()
    hs_store = InMemoryDocumentStore()
    hs_store.write_documents(docs)
    out["haystack_write_s"] = time.perf_counter() - t
    hs = InMemoryEmbeddingRetriever(hs_store, top_k=10)
    qps, n, hs_res = time_queries(
        lambda q: hs.run(query_embedding=q)["documents"], queries, args.budget, args.min_queries
    )
    out["haystack_qps"], out["haystack_n"] = qps, n
    print(f"  Haystack InMemoryEmbeddingRetriever: {qps:9.1f} q/s over {n} queries", flush=True)
    same = sum([d.id for d in hs_res[i]] == exact_ids[i] for i in range(n))
    out[f"spart_{args.factories[0]}_top10_identical_to_haystack"] = f"{same}/{n}"
    for factory in args.factories:
        out[f"ratio_{factory}_vs_haystack"] = out[f"spart_{factory}_qps"] / out["haystack_qps"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--factories", nargs="+", default=["Flat", "HNSW32"], help="first one must be exact")
    parser.add_argument("--ef-search", type=int, default=128)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--budget", type=float, default=30.0, help="seconds for the Haystack baseline per scale")
    parser.add_argument("--min-queries", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    passages = load_passages()
    results = {}
    for scale in args.scales:
        corpus = scale_corpus(passages, scale)
        print(f"== {len(corpus):,} passages x {args.queries} queries, {DIM}-d", flush=True)
        r = run_scale(corpus, args)
        results[f"x{scale}"] = r
        ratios = ", ".join(f"{f} {r[f'ratio_{f}_vs_haystack']:.1f}x" for f in args.factories)
        print(f"  ratios vs Haystack: {ratios}", flush=True)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
