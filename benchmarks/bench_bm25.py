"""BM25 retrieval speed: spart's BM25Retriever vs rank-bm25 and Haystack's InMemoryBM25Retriever.

One query per call for every system (no batching), top 10, on the wiki passages (15.5k) and the 10x
corpus from ``_corpus.scale_corpus`` (155k), queried with the 261 trivia questions. All systems use
Okapi BM25 (k1 = 1.5, b = 0.75; spart ``bm25_method="okapi"`` reproduces rank-bm25's scores), and spart's
top-10 lists are checked against rank-bm25's on the queries both answered. The slow baselines are
time-boxed: they answer as many queries as fit in ``--budget`` seconds (at least ``--min-queries``).

Run (from the repo root)::

    nice -n 10 .venv/bin/python benchmarks/bench_bm25.py --scales 1 10 --budget 30
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import load_passages, load_questions, scale_corpus  # noqa: E402


def time_queries(fn, queries, budget_s: float, min_queries: int, max_queries: int | None = None):
    """Run ``fn(q)`` over ``queries`` until the budget is spent; returns (queries/s, n, results)."""
    results, n, start = [], 0, time.perf_counter()
    limit = len(queries) if max_queries is None else max_queries
    while n < limit:
        results.append(fn(queries[n % len(queries)]))
        n += 1
        if n >= min_queries and time.perf_counter() - start > budget_s:
            break
    return n / (time.perf_counter() - start), n, results


def run_scale(passages, questions, args) -> dict:
    from haystack import Document
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from rank_bm25 import BM25Okapi

    from spart.bm25 import Tokenizer
    from spart.components.document_stores import FaissDocumentStore
    from spart.components.retrievers import BM25Retriever

    out: dict = {"documents": len(passages), "queries": len(questions)}
    docs = [Document(id=pid, content=text, meta={"title": title}) for pid, text, title in passages]

    # ---- spart
    t = time.perf_counter()
    store = FaissDocumentStore(embedding_dim=8, bm25_method="okapi")
    store.write_documents(docs)
    out["spart_write_s"] = time.perf_counter() - t
    retriever = BM25Retriever(store, top_k=10)
    t = time.perf_counter()
    retriever.run(query=questions[0])
    out["spart_first_query_s"] = time.perf_counter() - t  # tokenizes the corpus and builds the matrix
    qps, n, spart_res = time_queries(lambda q: retriever.run(query=q)["documents"], questions, 1e9, 0)
    out["spart_qps"], out["spart_n"] = qps, n
    print(f"  spart BM25Retriever: {qps:9.1f} q/s over {n} queries", flush=True)

    # The index follows writes and deletes: the next query rebuilds the matrix from cached token ids.
    store.write_documents([Document(id="extra", content="one more passage about the moon landing")])
    t = time.perf_counter()
    retriever.run(query=questions[0])
    out["spart_rebuild_after_write_s"] = time.perf_counter() - t
    store.delete_documents(["extra"])
    t = time.perf_counter()
    retriever.run(query=questions[0])
    out["spart_rebuild_after_delete_s"] = time.perf_counter() - t

    # ---- rank-bm25 (same tokens as spart: title + text through spart's tokenizer)
    tok = Tokenizer()
    t = time.perf_counter()
    oracle = BM25Okapi([tok(f"{title} {text}") for _, text, title in passages])
    out["rank_bm25_build_s"] = time.perf_counter() - t

    def rank_bm25_query(q):
        scores = oracle.get_scores(tok(q))
        top = np.argsort(-scores, kind="stable")[:10]
        return [(passages[i][0], scores[i]) for i in top if scores[i] != 0]

    qps, n, rank_res = time_queries(rank_bm25_query, questions, args.budget, args.min_queries)
    out["rank_bm25_qps"], out["rank_bm25_n"] = qps, n
    print(f"  rank-bm25 BM25Okapi: {qps:9.1f} q/s over {n} queries", flush=True)
    same = sum(
        [d.id for d in spart_res[i]] == [pid for pid, _ in rank_res[i]]
        and np.allclose([d.score for d in spart_res[i]], [s for _, s in rank_res[i]], atol=1e-6)
        for i in range(n)
    )
    out["top10_identical_to_rank_bm25"] = f"{same}/{n}"

    # ---- Haystack in-memory (same text: title + text as content)
    t = time.perf_counter()
    hs_store = InMemoryDocumentStore(bm25_algorithm="BM25Okapi")
    hs_store.write_documents([Document(id=pid, content=f"{title} {text}") for pid, text, title in passages])
    out["haystack_write_s"] = time.perf_counter() - t
    hs = InMemoryBM25Retriever(hs_store, top_k=10)
    qps, n, _ = time_queries(lambda q: hs.run(query=q)["documents"], questions, args.budget, args.min_queries)
    out["haystack_qps"], out["haystack_n"] = qps, n
    print(f"  Haystack InMemoryBM25Retriever: {qps:9.1f} q/s over {n} queries", flush=True)

    out["ratio_vs_rank_bm25"] = out["spart_qps"] / out["rank_bm25_qps"]
    out["ratio_vs_haystack"] = out["spart_qps"] / out["haystack_qps"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10], help="corpus multipliers")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds per slow baseline and scale")
    parser.add_argument("--min-queries", type=int, default=5)
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()

    passages, questions = load_passages(), load_questions()
    results = {}
    for scale in args.scales:
        corpus = scale_corpus(passages, scale)
        print(f"== {len(corpus):,} passages x {len(questions)} questions", flush=True)
        r = run_scale(corpus, questions, args)
        results[f"x{scale}"] = r
        print(
            f"  ratios: {r['ratio_vs_rank_bm25']:.1f}x rank-bm25, {r['ratio_vs_haystack']:.1f}x Haystack; "
            f"top-10 identical to rank-bm25: {r['top10_identical_to_rank_bm25']}; "
            f"write {r['spart_write_s']:.1f}s, first query (index build) {r['spart_first_query_s']:.2f}s, "
            f"rebuild after a write / delete {r['spart_rebuild_after_write_s']:.2f}s / "
            f"{r['spart_rebuild_after_delete_s']:.2f}s",
            flush=True,
        )
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
