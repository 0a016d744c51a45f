"""pydocs retrieval quality through PostgreSQL + pgvector vs through spart's FAISS store, same model and corpus.

    export SPART_TEST_PG_URL=$(scripts/postgres.sh start)
    python benchmarks/pgvector_pydocs.py [--url "$SPART_TEST_PG_URL"] [--split test]

The corpus is encoded once (the evaluation cache; a second run encodes nothing) and the same vectors go into
the FAISS store and into the pgvector table ``pydocs``. Prints one table: dense and hybrid over each store, and
each sparse side alone (spart's BM25 vs PostgreSQL full-text through pgvector-haystack's keyword retriever).
Needs ../shared/data/pydocs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "pydocs"
METRICS = ("ndcg@10", "recall@20", "recall@100", "mrr@10")

# label -> (pipeline, store, component whose documents are evaluated (None: the output), store settings)
# "pg_exact" is a copy of the table without the HNSW index: PostgreSQL then scans every row (exact search).
SYSTEMS = {
    "dense, FAISS Flat": ("dense_qa", "faiss", None, {}),
    "dense, pgvector exact (no index)": (
        "dense_qa_pgvector",
        "pg_exact",
        None,
        {"search_strategy": "exact_nearest_neighbor"},
    ),
    "dense, pgvector HNSW ef_search 100": ("dense_qa_pgvector", "pg", None, {"hnsw_ef_search": 100}),
    "dense, pgvector HNSW ef_search 400 (default)": ("dense_qa_pgvector", "pg", None, {}),
    "BM25 (spart)": ("hybrid_qa", "faiss", "bm25_retriever", {}),
    "keyword (PostgreSQL full-text)": ("hybrid_qa_pgvector", "pg", "keyword_retriever", {}),
    "hybrid: dense + spart BM25 (hybrid_qa)": ("hybrid_qa", "faiss", None, {}),
    "hybrid: dense + PG full-text (hybrid_qa_pgvector)": ("hybrid_qa_pgvector", "pg", None, {}),
}


def copy_without_index(url: str, table: str, copy: str) -> None:
    """``copy`` = the rows and build record of ``table``, without the HNSW index (for exact search)."""
    import psycopg

    from spart.pipelines.pgvector import BUILD_INFO_TABLE, split_store_url

    with psycopg.connect(split_store_url(url)[0], autocommit=True) as conn, conn.transaction():
        conn.execute(f'DROP TABLE IF EXISTS "{copy}"')
        conn.execute(f'CREATE TABLE "{copy}" AS TABLE "{table}"')
        conn.execute(f'ALTER TABLE "{copy}" ADD PRIMARY KEY (id)')
        conn.execute(f"DELETE FROM {BUILD_INFO_TABLE} WHERE table_name = %s", (copy,))
        conn.execute(
            f"INSERT INTO {BUILD_INFO_TABLE} SELECT %s, info FROM {BUILD_INFO_TABLE} WHERE table_name = %s",
            (copy, table),
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("SPART_TEST_PG_URL"), help="PostgreSQL URL (no #table)")
    parser.add_argument("--dataset", default=str(SHARED))
    parser.add_argument("--split", default="test")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the pgvector table")
    args = parser.parse_args()
    if not args.url:
        parser.error("no PostgreSQL URL: pass --url or export SPART_TEST_PG_URL=$(scripts/postgres.sh start)")
    if not Path(args.dataset).is_dir():
        print(f"skipped: {args.dataset} not found", file=sys.stderr)
        return 0

    from spart.components.embedders import SpiderDocumentEmbedder
    from spart.data.readers import passages_to_documents
    from spart.evaluation.cache import corpus_fingerprint
    from spart.evaluation.datasets import load_dataset
    from spart.evaluation.evaluate import evaluate_pipeline
    from spart.evaluation.stores import CachedDocumentEmbedder, ensure_store
    from spart.pipelines import build_store, load_pipeline, read_build_info, retrieve

    dataset = load_dataset(args.dataset, args.split)
    faiss_store = ensure_store(dataset)
    table_url = f"{args.url}#pydocs"
    try:
        built = read_build_info(table_url)
    except FileNotFoundError:
        built = None
    if built is None or args.rebuild:
        passages = list(dataset.passages())
        corpus_fp, count = corpus_fingerprint(passages)
        embedder = CachedDocumentEmbedder(SpiderDocumentEmbedder(progress_bar=False), passages, corpus_fp=corpus_fp)
        started = time.perf_counter()
        build_store(passages_to_documents(passages), table_url, embedder, total=count, chunk_size=1024, overwrite=True)
        print(f"pgvector table built in {time.perf_counter() - started:.1f} s (vectors from the cache)")

    copy_without_index(table_url, "pydocs", "pydocs_exact")
    stores = {"faiss": str(faiss_store), "pg": table_url, "pg_exact": f"{args.url}#pydocs_exact"}
    rows = []
    for label, (name, kind, output, settings) in SYSTEMS.items():
        pipeline = load_pipeline(name, store=stores[kind])
        for _, component in pipeline.walk():  # set before the store's first connection
            for key, value in settings.items():
                if hasattr(component, "document_store"):
                    setattr(component.document_store, key, value)
        pipeline.warm_up()
        retrieve(pipeline, "warm-up question")
        started = time.perf_counter()
        result = evaluate_pipeline(
            pipeline, dataset, system=label, top_k=100, metrics=METRICS, output=output, show_progress=False
        )
        rows.append((label, result.summary, (time.perf_counter() - started) / len(dataset.queries) * 1000))
    print(f"\npydocs {args.split} ({len(dataset.queries)} queries), packaged all-MiniLM-L6-v2, depth 100\n")
    print("| system | " + " | ".join(METRICS) + " | ms/query |")
    print("|---|" + "---|" * (len(METRICS) + 1))
    for label, summary, ms in rows:
        print(f"| {label} | " + " | ".join(f"{summary[m]:.4f}" for m in METRICS) + f" | {ms:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
