"""Evaluate dense models (SPIDER runs, their inits, few-shot models) against BM25 on candidate pools, on CPU.

Encoding the full corpora (15k passages each) per checkpoint does not fit the CPU budget of the experiment in
docs/training-spider.md, so each model re-ranks a fixed candidate pool per question:

- pydocs test (77 queries, BEIR qrels): pool = BM25 top-``--pydocs-k`` over the full corpus plus the query's
  relevant passages (so every query has its positives among ~K hard BM25 distractors). Metrics: Recall@1/5/10
  and MRR@10 within the pool. BM25 on the same pool ranks by its own score. This is a re-ranking proxy, easier
  than full retrieval; BM25's *full-corpus* figures are printed too.
- trivia test (133 questions, answer strings): pool = BM25 top-``--trivia-k`` over the wiki corpus; a passage
  is a hit if it contains an answer (DPR ``has_answer``). Metrics: top-1/5 accuracy within the pool (top-K
  equals BM25's top-K by construction).

Usage (from the repository root)::

    nice -n 10 .venv/bin/python benchmarks/spider_pool_eval.py --out ../runs/spider-pool-eval.json \\
        init-cls=all-MiniLM-L6-v2:cls spider-100=../runs/spider-minilm/models/step-00000100

A model spec is ``name=path[:pooling]``; pooling ``cls``/``mean`` overrides the model's own (``mean`` also
L2-normalises, as all-MiniLM-L6-v2 does natively). Results already in ``--out`` are kept (incremental).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("SPART_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def bm25_setup(passages):
    from spart.bm25 import BM25Index, Tokenizer

    tokenizer = Tokenizer(stopwords="en")
    index = BM25Index()
    index.build(tokenizer(f"{p.title} {p.text}") for p in passages)
    return tokenizer, index


def build_pools(pydocs_k: int, trivia_k: int) -> dict:
    from spart.data.readers import read_beir_corpus, read_beir_qrels, read_beir_queries, read_dpr_passages, read_dpr_qa
    from spart.evaluation.answers import has_answer

    pools: dict = {}
    # ---- pydocs
    corpus = list(read_beir_corpus(DATA / "pydocs" / "corpus.jsonl"))
    position = {p.id: i for i, p in enumerate(corpus)}
    qrels = read_beir_qrels(DATA / "pydocs" / "qrels" / "test.tsv")
    queries = {q.id: q.text for q in read_beir_queries(DATA / "pydocs" / "queries.jsonl")}
    tok, index = bm25_setup(corpus)
    items, full = [], {"recall@1": [], "recall@5": [], "recall@20": [], "mrr@10": []}
    for qid in sorted(qrels):
        relevant = {pid for pid, s in qrels[qid].items() if s > 0}
        q_tokens = tok(queries[qid])
        _, top = index.search(q_tokens, k=max(100, pydocs_k))
        ranked = [corpus[i].id for i in top]
        for k in (1, 5, 20):
            full[f"recall@{k}"].append(len(relevant & set(ranked[:k])) / len(relevant))
        full["mrr@10"].append(next((1 / (r + 1) for r, pid in enumerate(ranked[:10]) if pid in relevant), 0.0))
        pool = ranked[:pydocs_k] + sorted(relevant - set(ranked[:pydocs_k]))
        scores = index.get_scores(q_tokens)
        items.append(
            {
                "query": queries[qid],
                "pool": pool,
                "relevant": sorted(relevant),
                "bm25": [float(scores[position[pid]]) for pid in pool],
            }
        )
    pools["pydocs"] = {
        "items": items,
        "passages": {p.id: (p.title, p.text) for p in corpus if any(p.id in it["pool"] for it in items)},
        "bm25_full_corpus": {k: float(np.mean(v)) for k, v in full.items()},
    }
    # ---- trivia
    wiki = list(read_dpr_passages(DATA / "wiki" / "passages.tsv"))
    tok, index = bm25_setup(wiki)
    items = []
    for qa in read_dpr_qa(DATA / "wiki" / "trivia-test.csv"):
        scores_k, top = index.search(tok(qa.question), k=trivia_k)
        pool = [wiki[i].id for i in top]
        hits = [has_answer(qa.answers, wiki[i].text) for i in top]
        items.append({"query": qa.question, "pool": pool, "hits": hits, "bm25": [float(s) for s in scores_k]})
    wanted = {pid for it in items for pid in it["pool"]}
    pools["trivia"] = {"items": items, "passages": {p.id: (p.title, p.text) for p in wiki if p.id in wanted}}
    return pools


def metrics_from_rankings(pools: dict, rank) -> dict:
    """``rank(dataset, item) -> order of pool indices``; returns the pool metrics."""
    out = {}
    rec = {1: [], 5: [], 10: []}
    mrr = []
    for it in pools["pydocs"]["items"]:
        order = [it["pool"][i] for i in rank("pydocs", it)]
        relevant = set(it["relevant"])
        for k in rec:
            rec[k].append(len(relevant & set(order[:k])) / len(relevant))
        mrr.append(next((1 / (r + 1) for r, pid in enumerate(order[:10]) if pid in relevant), 0.0))
    out["pydocs"] = {**{f"recall@{k}": float(np.mean(v)) for k, v in rec.items()}, "mrr@10": float(np.mean(mrr))}
    acc = {1: [], 5: []}
    for it in pools["trivia"]["items"]:
        order = rank("trivia", it)
        for k in acc:
            acc[k].append(any(it["hits"][i] for i in order[:k]))
    out["trivia"] = {f"top{k}": float(np.mean(v)) for k, v in acc.items()}
    return out


def evaluate_model(pools: dict, path: str, pooling: str | None, passage_max_length: int) -> dict:
    from spart.encoders import SPIDER_DEFAULTS, DualEncoder

    overrides = {"passage_max_length": passage_max_length}
    if pooling:
        overrides.update(pooling=pooling, normalize=(pooling == "mean"))
    encoder = DualEncoder.load(path, defaults=SPIDER_DEFAULTS, device="cpu", **overrides)
    vectors = {}
    for name, pool in pools.items():
        ids = list(pool["passages"])
        titles = [pool["passages"][i][0] for i in ids]
        texts = [pool["passages"][i][1] for i in ids]
        p = encoder.encode_passages(texts, titles, batch_size=32)
        q = encoder.encode_queries([it["query"] for it in pool["items"]], batch_size=64)
        vectors[name] = ({pid: n for n, pid in enumerate(ids)}, p, q)

    rows = {id(it): n for pool in pools.values() for n, it in enumerate(pool["items"])}

    def rank(name, item):
        where, p, q = vectors[name]
        scores = p[[where[pid] for pid in item["pool"]]] @ q[rows[id(item)]]
        return list(np.argsort(-scores, kind="stable"))

    return metrics_from_rankings(pools, rank)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="name=path[:pooling]")
    parser.add_argument("--out", required=True)
    parser.add_argument("--pydocs-k", type=int, default=20)
    parser.add_argument("--trivia-k", type=int, default=10)
    parser.add_argument("--passage-max-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    cache = out.with_name(out.stem + f".pools-{args.pydocs_k}-{args.trivia_k}.json")
    if cache.is_file():
        pools = json.loads(cache.read_text())
    else:
        pools = build_pools(args.pydocs_k, args.trivia_k)
        cache.write_text(json.dumps(pools))
    if "bm25" not in results:
        results["bm25"] = metrics_from_rankings(
            pools, lambda name, it: list(np.argsort(-np.asarray(it["bm25"]), kind="stable"))
        )
        results["bm25"]["pydocs_full_corpus"] = pools["pydocs"]["bm25_full_corpus"]
    for spec in args.models:
        name, _, rest = spec.partition("=")
        path, _, pooling = (
            rest.partition(":")
            if rest.count(":") == 1 and rest.rsplit(":", 1)[1] in ("cls", "mean")
            else (rest, "", "")
        )
        start = time.perf_counter()
        results[name] = evaluate_model(pools, path, pooling or None, args.passage_max_length)
        results[name]["seconds"] = round(time.perf_counter() - start, 1)
        print(name, json.dumps(results[name]), flush=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(results, indent=2))
        os.replace(tmp, out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, out)
    print("bm25", json.dumps(results["bm25"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
