"""The small ART experiment of docs/training-art.md: candidate pools, then BM25 / init / init+rerank / ART.

The CPU budget (2 shared cores) does not allow encoding the full 15k-passage corpora for every model and step,
so every system is evaluated on the same *pool* per data set: the judged passages (pydocs) plus the BM25
top-``bm25_k`` of every train and test question, filled with random passages to ``size``. A dense model must
still find the right passage among thousands of mostly lexically similar ones. ART trains over the same pool.

Usage::

    python benchmarks/art_experiment.py pool --dataset pydocs --out ../runs/art/pydocs-pool
    spart train art --config ... --set evidence=../runs/art/pydocs-pool/corpus.jsonl \\
        --set questions=../runs/art/pydocs-pool/train-questions.txt
    python benchmarks/art_experiment.py eval --dataset pydocs --pool ../runs/art/pydocs-pool \\
        --model init=all-MiniLM-L6-v2 --model art=../runs/art/pydocs/final --rerank 8 --out results.json

``eval`` prints each metric with its ratio against BM25 and against the initial model, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def load_dataset(name: str):
    """``(passages, {split: [(qid, question, answers_or_None)]}, {split: qrels or None})``."""
    from spart.data import read_beir_qrels, read_beir_queries, read_dpr_qa, read_passages

    if name == "pydocs":
        root = DATA / "pydocs"
        passages = list(read_passages(root / "corpus.jsonl"))
        texts = {q.id: q.text for q in read_beir_queries(root / "queries.jsonl")}
        qrels = {s: read_beir_qrels(root / "qrels" / f"{s}.tsv") for s in ("train", "test")}
        questions = {s: [(qid, texts[qid], None) for qid in qrels[s]] for s in ("train", "test")}
        return passages, questions, qrels
    if name == "wiki":
        root = DATA / "wiki"
        passages = list(read_passages(root / "passages.tsv"))
        questions = {
            s: [(f"{s}-{i}", qa.question, qa.answers) for i, qa in enumerate(read_dpr_qa(root / f"trivia-{s}.csv"))]
            for s in ("train", "test")
        }
        return passages, questions, {"train": None, "test": None}
    raise ValueError(f"unknown dataset {name!r}")


def bm25_index(passages):
    from spart.bm25 import BM25Index, Tokenizer

    tokenizer = Tokenizer(stopwords="en")
    index = BM25Index()
    index.build([tokenizer(f"{p.title} {p.text}") for p in passages])
    return index, tokenizer


def bm25_rank(index, tokenizer, question: str, k: int) -> list[int]:
    tokens = tokenizer(question) or question.lower().split()
    _, positions = index.search(tokens, k)
    return [int(p) for p in positions]


# ---------------------------------------------------------------------- pool
def make_pool(args) -> None:
    passages, questions, qrels = load_dataset(args.dataset)
    index, tokenizer = bm25_index(passages)
    keep: set[int] = set()
    position = {p.id: i for i, p in enumerate(passages)}
    for split in ("train", "test"):
        for qid, question, _ in questions[split]:
            keep.update(bm25_rank(index, tokenizer, question, args.bm25_k))
            if qrels[split]:
                keep.update(position[cid] for cid in qrels[split].get(qid, {}) if cid in position)
    rng = random.Random(args.seed)
    rest = [i for i in range(len(passages)) if i not in keep]
    rng.shuffle(rest)
    keep.update(rest[: max(0, args.size - len(keep))])
    chosen = sorted(keep)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as handle:
        for i in chosen:
            p = passages[i]
            handle.write(json.dumps({"_id": p.id, "title": p.title, "text": p.text}) + "\n")
    with open(out / "train-questions.txt", "w", encoding="utf-8") as handle:
        handle.writelines(q + "\n" for _, q, _ in questions["train"])
    print(f"{args.dataset}: pool of {len(chosen)} passages ({len(passages)} in the corpus) -> {out}")


# ---------------------------------------------------------------------- eval
def dense_rankings(model: str, pool, queries: list[str], k: int, batch_size: int = 64) -> np.ndarray:
    from spart.encoders import ART_DEFAULTS, DualEncoder

    if model.startswith("ckpt:"):  # a training checkpoint directory: <run>/checkpoints/step-N
        encoder = encoder_from_checkpoint(Path(model[5:]))
    else:
        encoder = DualEncoder.load(
            model, defaults=ART_DEFAULTS, device="cpu", precision="auto", query_max_length=32, passage_max_length=128
        )
    p = encoder.encode_passages(
        [x.text for x in pool], [x.title for x in pool], batch_size=batch_size, show_progress=True
    )
    q = encoder.encode_queries(queries)
    return np.argsort(-(q @ p.T), axis=1, kind="stable")[:, :k]


def encoder_from_checkpoint(path: Path):
    """The model of an ART checkpoint: the run's config.yaml rebuilds the encoder, the state fills it."""
    import torch

    from spart.encoders import ART_DEFAULTS
    from spart.encoders.precision import resolve_precision
    from spart.training.checkpoint import Checkpointer
    from spart.training.config import ARTTrainingConfig, load_config
    from spart.training.models import build_encoder

    config = load_config(ARTTrainingConfig, path.parents[1] / "config.yaml")
    cpu = torch.device("cpu")
    encoder = build_encoder(config, cpu, defaults=ART_DEFAULTS, precision=resolve_precision("auto", cpu))
    encoder.load_state_dict(Checkpointer(path.parents[1]).load(path)["model"])
    return encoder.eval()


def rerank(rankings: np.ndarray, pool, queries: list[str], depth: int, cache: str) -> np.ndarray:
    from spart.teacher import QuestionLikelihoodScorer, ScoreCache

    scorer = QuestionLikelihoodScorer(cache=ScoreCache(cache), max_passage_tokens=128, batch_size=16, progress_bar=True)
    scorer.warm_up()
    heads = [[pool[int(i)] for i in row[:depth]] for row in rankings]
    scores = scorer.score_topk(queries, heads)
    order = np.argsort(-scores, axis=1, kind="stable")
    out = rankings.copy()
    out[:, :depth] = np.take_along_axis(rankings[:, :depth], order, 1)
    return out


def metrics_for(dataset: str, rankings: np.ndarray, pool, test, qrels) -> dict[str, float]:
    if dataset == "wiki":
        from spart.evaluation.answers import hits_for_ranking
        from spart.evaluation.metrics import top_k_accuracy

        hits = [
            hits_for_ranking(answers, [pool[int(i)].text for i in row]) for (_, _, answers), row in zip(test, rankings)
        ]
        return {f"top{k}": v for k, v in top_k_accuracy(hits, (1, 5, 20)).items()}
    from spart.evaluation.metrics import beir_metrics

    ranked = {qid: [pool[int(i)].id for i in row] for (qid, _, _), row in zip(test, rankings)}
    means, _ = beir_metrics(qrels, ranked, ["recall@1", "recall@5", "recall@20", "mrr@10", "ndcg@10"])
    return means


def evaluate(args) -> None:
    from spart.data import read_passages

    _, questions, qrels = load_dataset(args.dataset)
    pool = list(read_passages(Path(args.pool) / "corpus.jsonl"))
    test = questions["test"]
    queries = [q for _, q, _ in test]
    results: dict[str, dict] = {}
    index, tokenizer = bm25_index(pool)
    bm25 = np.full((len(queries), args.k), 0, dtype=np.int64)
    for i, q in enumerate(queries):
        row = bm25_rank(index, tokenizer, q, args.k)
        row += [j for j in range(args.k) if j not in row][: args.k - len(row)]  # pad queries with few matches
        bm25[i] = row[: args.k]
    results["bm25"] = metrics_for(args.dataset, bm25, pool, test, qrels["test"])
    init_rankings = None
    for spec in args.model:
        name, _, location = spec.partition("=")
        start = time.perf_counter()
        rankings = dense_rankings(location, pool, queries, args.k)
        results[name] = metrics_for(args.dataset, rankings, pool, test, qrels["test"])
        results[name]["seconds"] = time.perf_counter() - start
        if init_rankings is None:
            init_rankings = rankings
        print(name, results[name], file=sys.stderr, flush=True)
    if args.rerank and init_rankings is not None:
        name = args.model[0].partition("=")[0]
        reranked = rerank(init_rankings, pool, queries, args.rerank, args.cache)
        results[f"{name}+rerank{args.rerank}"] = metrics_for(args.dataset, reranked, pool, test, qrels["test"])
    first = args.model[0].partition("=")[0] if args.model else None
    metric_names = [m for m in results["bm25"]]
    print(f"{args.dataset} test, pool of {len(pool)} passages ({len(queries)} questions)")
    header = "system".ljust(22) + "".join(m.rjust(12) for m in metric_names)
    print(header)
    for system, values in results.items():
        line = system.ljust(22)
        for m in metric_names:
            v = values[m]
            ratio_bm25 = v / results["bm25"][m] if results["bm25"][m] else float("nan")
            line += f"{v:8.3f}({ratio_bm25:4.2f})".rjust(12)
        print(line)
    print("(in brackets: ratio to BM25 in this run)")
    if first:
        print(
            "ratios to "
            + first
            + ": "
            + json.dumps(
                {
                    s: {m: round(v[m] / results[first][m], 3) if results[first][m] else None for m in metric_names}
                    for s, v in results.items()
                }
            )
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(
            json.dumps({"dataset": args.dataset, "pool": len(pool), "results": results}, indent=2)
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pool")
    p.add_argument("--dataset", required=True, choices=["pydocs", "wiki"])
    p.add_argument("--out", required=True)
    p.add_argument("--size", type=int, default=2500)
    p.add_argument("--bm25-k", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    e = sub.add_parser("eval")
    e.add_argument("--dataset", required=True, choices=["pydocs", "wiki"])
    e.add_argument("--pool", required=True)
    e.add_argument("--model", action="append", default=[], help="name=location; the first is the baseline")
    e.add_argument("--rerank", type=int, default=0, help="rerank the first model's top-N with the LM teacher")
    e.add_argument("--cache", default="../runs/art/teacher-scores.sqlite")
    e.add_argument("--k", type=int, default=20)
    e.add_argument("--out")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    (make_pool if args.command == "pool" else evaluate)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
