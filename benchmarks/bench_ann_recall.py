"""Recall@10 and speed of approximate FAISS indexes on real embeddings, against the exact ``Flat`` index.

Corpus: the wiki passages (``--passages``, a DPR TSV), encoded with the packaged all-MiniLM-L6-v2 through
``spart.evaluation.cache.encode_corpus_cached`` (so a second run, or any evaluation that already encoded
this corpus, reads the cached vectors). ``--holdout`` passages (seeded) are left out of the index and their
passage embeddings are one query set; the trivia questions (``--questions``, encoded with the query side)
are the other. Every index is a :class:`spart.index.DenseIndex` (inner product, what ``FaissDocumentStore``
builds for a factory string) over the same vectors; IVF and PQ train on all of them.

Per index and search setting: recall@10 = |approximate top 10 ∩ exact top 10| / 10, averaged over each
query set, and queries/s with one query per call (as a retriever issues them). FAISS runs on ``--threads``
threads (default 1: on a small shared machine OpenMP's spinning threads slow training down by an order of
magnitude). Printed as a table and as JSON (``--output`` also writes the JSON).

Run (from the repo root; encoding the 15.5k passages takes a few minutes on 2 CPUs the first time)::

    nice -n 15 .venv/bin/python benchmarks/bench_ann_recall.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _corpus import DATA  # noqa: E402
from bench_store_scale import cpu_description  # noqa: E402

K = 10
# (factory, search parameter name, values): each index is built once and searched with every value
SWEEPS = [
    ("HNSW32", "ef_search", [16, 64, 128]),
    ("IVF256,Flat", "nprobe", [1, 4, 16, 64]),
    ("IVF256,SQ8", "nprobe", [1, 4, 16, 64]),
    ("IVF256,PQ32", "nprobe", [1, 4, 16, 64]),  # 12 dimensions per sub-quantizer, as IVF...,PQ64 at 768-d
]


def encode(passages_path: Path, question_paths: list[Path], holdout: int, seed: int):
    """(index vectors, held-out passage vectors, question vectors, encoder description)."""
    from spart.data.readers import read_dpr_passages, read_questions
    from spart.encoders import DualEncoder
    from spart.encoders.loading import packaged_minilm_path
    from spart.evaluation.cache import encode_corpus_cached

    passages = list(read_dpr_passages(passages_path))
    questions = [q for path in question_paths for q in read_questions(path)]
    encoder = DualEncoder.load(packaged_minilm_path(), device="cpu")
    start = time.perf_counter()
    vectors = np.asarray(encode_corpus_cached(encoder, passages), dtype=np.float32)
    corpus_s = time.perf_counter() - start
    query_vectors = encoder.encode_queries(questions).astype(np.float32)
    held = np.zeros(len(vectors), dtype=bool)
    held[np.random.default_rng(seed).choice(len(vectors), size=holdout, replace=False)] = True
    info = {
        "encoder": f"packaged all-MiniLM-L6-v2 (fingerprint {encoder.fingerprint})",
        "passages": len(passages),
        "indexed": int((~held).sum()),
        "held_out_queries": holdout,
        "questions": len(questions),
        "dim": int(vectors.shape[1]),
        "corpus_encode_or_cache_s": round(corpus_s, 1),
    }
    return vectors[~held], vectors[held], query_vectors, info


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(e)) / K for a, e in zip(approx.tolist(), exact.tolist())]))


def per_query_rate(index, queries: np.ndarray, budget_s: float) -> float:
    """Queries per second with one query per ``search`` call, over up to ``budget_s`` seconds."""
    n, start = 0, time.perf_counter()
    while n < len(queries):
        index.search(queries[n], K)
        n += 1
        if time.perf_counter() - start > budget_s:
            break
    return n / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=Path, default=DATA / "wiki" / "passages.tsv")
    parser.add_argument(
        "--questions",
        type=Path,
        nargs="+",
        default=[DATA / "wiki" / "trivia-test.csv", DATA / "wiki" / "trivia-train.csv"],
    )
    parser.add_argument("--holdout", type=int, default=1000, help="passages left out of the index as queries")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=float, default=3.0, help="seconds of q/s timing per setting")
    parser.add_argument("--threads", type=int, default=1, help="FAISS (OpenMP) threads")
    parser.add_argument("--output", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()

    import faiss

    from spart.index import DenseIndex

    faiss.omp_set_num_threads(args.threads)
    base, held, asked, info = encode(args.passages, args.questions, args.holdout, args.seed)
    query_sets = {"held-out passages": held, "trivia questions": asked}
    timing_queries = np.concatenate([held, asked])
    dim = base.shape[1]
    ids = np.arange(len(base), dtype=np.int64)

    exact = DenseIndex(dim, "Flat")
    exact.add(base, ids)
    truth = {name: exact.search(q, K)[1] for name, q in query_sets.items()}
    rows = [
        {
            "factory": "Flat",
            "param": "",
            "value": None,
            **{f"recall@10 {name}": 1.0 for name in query_sets},
            "qps": per_query_rate(exact, timing_queries, args.budget),
            "build_s": None,
            "index_mb": len(exact.to_bytes()) / 2**20,
        }
    ]
    for factory, param, values in SWEEPS:
        start = time.perf_counter()
        index = DenseIndex(dim, factory)
        index.add(base, ids)
        build_s = time.perf_counter() - start
        size_mb = len(index.to_bytes()) / 2**20
        for value in values:
            index.set_search_params(**{param: value})
            row = {"factory": factory, "param": param, "value": value}
            for name, q in query_sets.items():
                row[f"recall@10 {name}"] = recall(index.search(q, K)[1], truth[name])
            row.update(qps=per_query_rate(index, timing_queries, args.budget), build_s=build_s, index_mb=size_mb)
            rows.append(row)
            print(json.dumps(row), flush=True)

    cpu = cpu_description()
    print(f"\n{cpu}\n{json.dumps(info)}\n")
    names = list(query_sets)
    print("| index | search setting | " + " | ".join(f"recall@10 {n}" for n in names) + " | q/s | build s | MB |")
    print("|---|---|" + "---:|" * (len(names) + 3))
    for r in rows:
        setting = "exact" if r["value"] is None else f"{r['param']}={r['value']}"
        build = "–" if r["build_s"] is None else f"{r['build_s']:.1f}"
        cells = [f"{r[f'recall@10 {n}']:.3f}" for n in names] + [f"{r['qps']:,.0f}", build, f"{r['index_mb']:.1f}"]
        print(f"| {r['factory']} | {setting} | " + " | ".join(cells) + " |")
    result = {"cpu": cpu, **info, "k": K, "results": rows}
    print("\nJSON " + json.dumps(result))
    if args.output:
        args.output.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
