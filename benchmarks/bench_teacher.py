"""Question-likelihood teacher: throughput (fp32 vs bf16, with/without the score cache) and a UPR zero-shot check.

Workload: pydocs test queries, each with its BM25 top-K passages (bm25s, English stop words, no stemming,
``title + text``, as in ../shared/data/README.md), i.e. the ART training step's shape (questions x top-K).

``throughput``: scores ``--queries`` x ``--k`` pairs with the packaged SmolLM2 teacher
  1. fp32, no cache (the baseline all ratios refer to),
  2. bf16 autocast, no cache, and bf16 weights (model cast once), no cache,
  3. fp32 with a cold SQLite cache (cost of writing),
  4. fp32 with the now warm cache (all hits),
and reports how closely bf16 agrees with fp32 (max |diff|, Spearman per query, top-1 agreement).

``rerank``: reranks BM25's top-K for ``--queries`` pydocs test queries with the teacher (plain prompt and
the SmolLM2 chat template) and compares MRR@10 / nDCG@10 / recall@k against BM25 with ranx (paired t-test).

Run (from the repo root; the machine is shared, so nice and 2 threads)::

    nice -n 10 .venv/bin/python benchmarks/bench_teacher.py throughput --queries 8 --k 20 --threads 2
    nice -n 10 .venv/bin/python benchmarks/bench_teacher.py rerank --queries 30 --k 20 --threads 2 \
        --cache ../runs/teacher-bench/rerank.sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SPART_SHARED_DATA", REPO.parent / "shared" / "data")) / "pydocs"


def load_pydocs():
    from spart.data.readers import read_beir_corpus, read_beir_qrels, read_beir_queries

    if not (DATA / "corpus.jsonl").is_file():
        raise FileNotFoundError(f"pydocs corpus not found under {DATA} (set SPART_SHARED_DATA)")
    corpus = list(read_beir_corpus(DATA / "corpus.jsonl"))
    queries = {q.id: q.text for q in read_beir_queries(DATA / "queries.jsonl")}
    qrels = read_beir_qrels(DATA / "qrels" / "test.tsv")
    return corpus, queries, qrels


def bm25_topk(corpus, questions: list[str], k: int) -> tuple[list[list[int]], np.ndarray]:
    """bm25s top-k corpus positions and scores per question (README's reference configuration)."""
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([f"{p.title} {p.text}" for p in corpus], stopwords="en", show_progress=False),
                    show_progress=False)
    docs, scores = retriever.retrieve(bm25s.tokenize(questions, stopwords="en", show_progress=False), k=k,
                                      show_progress=False)
    return docs.tolist(), scores


def make_scorer(precision: str, cache=None, use_chat_template: bool = False, batch_size: int = 16):
    from spart.teacher import QuestionLikelihoodScorer

    scorer = QuestionLikelihoodScorer(precision=precision, device="cpu", cache=cache, batch_size=batch_size,
                                      use_chat_template=use_chat_template, progress_bar=True)
    t0 = time.perf_counter()
    scorer.warm_up()
    print(f"# loaded teacher ({precision}, chat={use_chat_template}) in {time.perf_counter() - t0:.1f}s",
          flush=True)
    return scorer


def timed_topk(scorer, questions, passages) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    scores = scorer.score_topk(questions, passages)
    return scores, time.perf_counter() - t0


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def cmd_throughput(args) -> dict:
    from spart.teacher import ScoreCache

    corpus, queries, qrels = load_pydocs()
    qids = sorted(qrels)[: args.queries]
    questions = [queries[q] for q in qids]
    top, _ = bm25_topk(corpus, questions, args.k)
    passages = [[corpus[i] for i in row] for row in top]
    n = len(questions) * args.k
    print(f"# workload: {len(questions)} pydocs test queries x BM25 top-{args.k} = {n} pairs, "
          f"threads={args.threads}, batch_size={args.batch_size}", flush=True)
    results = {}
    fp32 = make_scorer("fp32", batch_size=args.batch_size)
    fp32_scores, t = timed_topk(fp32, questions, passages)
    results["fp32, no cache (baseline)"] = n / t
    bf16 = make_scorer("bf16", batch_size=args.batch_size)
    bf16_scores, t = timed_topk(bf16, questions, passages)
    results["bf16 autocast, no cache"] = n / t
    del bf16
    bf16w = make_scorer("bf16-weights", batch_size=args.batch_size)
    bf16w_scores, t = timed_topk(bf16w, questions, passages)
    results["bf16 weights, no cache"] = n / t
    del bf16w
    with tempfile.TemporaryDirectory() as tmp:
        fp32.cache = ScoreCache(Path(tmp) / "scores.sqlite")
        cold, t = timed_topk(fp32, questions, passages)
        results["fp32, cold cache (scores + writes)"] = n / t
        warm, t = timed_topk(fp32, questions, passages)
        results["fp32, warm cache (all hits)"] = n / t
        fp32.cache.close()
    assert np.array_equal(warm, cold.astype(np.float32)), "cache returned different scores"
    base = results["fp32, no cache (baseline)"]
    print(f"\n{'configuration':40s} {'pairs/s':>10s} {'vs fp32':>8s}")
    for name, rate in results.items():
        print(f"{name:40s} {rate:10.2f} {rate / base:7.2f}x")
    agreement = {"bf16": agree(bf16_scores, fp32_scores), "bf16-weights": agree(bf16w_scores, fp32_scores)}
    for name, values in agreement.items():
        print(f"\n{name} vs fp32:", json.dumps(values))
    return {"pairs_per_s": results, "vs_fp32": agreement, "pairs": n}


def agree(scores: np.ndarray, reference: np.ndarray) -> dict:
    """How closely a low-precision run reproduces the fp32 scores and per-question rankings."""
    diff = np.abs(scores - reference)
    rho = [spearman(a, b) for a, b in zip(scores, reference)]
    top1 = float(np.mean(scores.argmax(1) == reference.argmax(1)))
    return {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "mean_spearman": float(np.mean(rho)), "min_spearman": float(np.min(rho)), "top1_agreement": top1}


def ranx_eval(qrels, runs: dict[str, dict[str, dict[str, float]]], metrics: list[str]):
    from ranx import Qrels, Run, compare

    report = compare(Qrels(qrels), [Run(r, name=name) for name, r in runs.items()], metrics=metrics,
                     stat_test="student", max_p=0.05)
    return report


def cmd_rerank(args) -> dict:
    from spart.teacher import ScoreCache

    corpus, queries, qrels = load_pydocs()
    qids = sorted(qrels)[: args.queries]
    sub_qrels = {q: {d: int(r) for d, r in qrels[q].items()} for q in qids}
    questions = [queries[q] for q in qids]
    top, bm25_scores = bm25_topk(corpus, questions, args.k)
    passages = [[corpus[i] for i in row] for row in top]
    runs = {"BM25": {q: {corpus[i].id: float(s) for i, s in zip(row, srow)}
                     for q, row, srow in zip(qids, top, bm25_scores)}}
    cache = ScoreCache(args.cache) if args.cache else None
    configs = {"plain": ("UPR SmolLM2 plain", False), "chat": ("UPR SmolLM2 chat", True)}
    for key in args.configs.split(","):
        name, chat = configs[key]
        precision = args.precision
        scorer = make_scorer(precision, cache=cache, use_chat_template=chat, batch_size=args.batch_size)
        scorer.progress_bar = False
        # a few questions per call, so the cache checkpoints progress (a rerun resumes where this stopped)
        parts, t = [], 0.0
        for start in range(0, len(questions), args.chunk):
            part, dt = timed_topk(scorer, questions[start:start + args.chunk], passages[start:start + args.chunk])
            parts.append(part)
            t += dt
            print(f"#   {name}: {start + len(part)}/{len(questions)} questions, {t:.0f}s", flush=True)
        scores = np.concatenate(parts)
        print(f"# {name}: {len(questions) * args.k} pairs in {t:.1f}s ({scorer.stats})", flush=True)
        runs[name] = {q: {corpus[i].id: float(s) for i, s in zip(row, srow)}
                      for q, row, srow in zip(qids, top, scores)}
        del scorer
    metrics = ["mrr@10", "ndcg@10", "recall@1", "recall@5", "recall@10", f"recall@{args.k}"]
    report = ranx_eval(sub_qrels, runs, metrics)
    print(f"\n{len(qids)} pydocs test queries, BM25 top-{args.k} reranked (ranx; superscripts: significantly "
          "better than that run, paired t-test p<0.05):")
    print(report)
    return {"queries": len(qids), "k": args.k, "metrics": report.to_dict()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("throughput", "rerank"):
        p = sub.add_parser(name)
        p.add_argument("--queries", type=int, default=8 if name == "throughput" else 30)
        p.add_argument("--k", type=int, default=20)
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--batch-size", type=int, default=16)
        p.add_argument("--json", type=Path, default=None, help="also write the results here")
        if name == "rerank":
            p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "bf16-weights"])
            p.add_argument("--configs", default="plain,chat", help="comma-separated: plain, chat")
            p.add_argument("--chunk", type=int, default=3, help="questions per scoring call (cache checkpoint)")
            p.add_argument("--cache", default=None, help="SQLite score cache (reruns are then free)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    result = cmd_throughput(args) if args.cmd == "throughput" else cmd_rerank(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
