"""Question-likelihood teacher: throughput (fp32 vs bf16, with/without the score cache) and a UPR zero-shot check.

Workload: pydocs test queries, each with its BM25 top-K passages (bm25s, English stop words, no stemming,
``title + text``, as in ../shared/data/README.md), i.e. the ART training step's shape (questions x top-K).

``throughput``: scores ``--queries`` x ``--k`` pairs with the packaged SmolLM2 teacher
  1. fp32, no cache (the baseline all ratios refer to),
  2. bf16 autocast, no cache, and bf16 weights (model cast once), no cache,
  3. fp32 with a cold SQLite cache (cost of writing),
  4. fp32 with the now warm cache (all hits),
and reports how closely bf16 agrees with fp32 (max |diff|, Spearman per query, top-1 agreement).

``backends``: today's path vs the ONNX Runtime backends on the same pairs (``--queries`` x ``--k``, default
  10 x 20 = 200), per teacher (the packaged SmolLM2, plus each ``--extra-model``, e.g. a Qwen2.5-0.5B GGUF):
  torch fp32 with left-padded, masked batches (the layout every causal teacher used before; the baseline all
  ratios refer to), torch fp32 and ``precision="auto"`` (bf16 where native; today's default) with the
  right-padded layout (``QuestionLikelihoodScorer.causal_layout``), ``precision="auto"`` left-padded, torch
  with the weights cast to bf16 once (``precision="bf16-weights"``), ``backend="onnx"`` (fp32),
  ``backend="onnx-int8"`` and, where ``llama-cpp-python`` is installed,
  llama.cpp's batch API on the GGUF's own weights (``teacher_llamacpp.py``, a benchmark configuration, not a
  spart backend), and torch fp32 / ``precision="auto"`` with the model wrapped in ``torch.compile(dynamic=True)``
  (inductor; benchmark configurations, compiled during the warm-up, whose time is reported); each scores every
  pair with no cache,
  alternating ``--repeats`` times (best time kept). Reports pairs/s, the ratio to torch fp32 (of best times, and
  the median over rounds of the ratio within a round), agreement with
  the fp32 scores (Spearman per question, mean and min; top-1), the one-off export time, and what
  ``backend="auto"`` resolves to. Exports are cached under $SPART_CACHE/teacher-onnx.

``rerank``: reranks BM25's top-K for ``--queries`` pydocs test queries with the teacher (plain prompt and
the SmolLM2 chat template) and compares MRR@10 / nDCG@10 / recall@k against BM25 with ranx (paired t-test).

Run (from the repo root; the machine is shared, so nice and 2 threads)::

    nice -n 10 .venv/bin/python benchmarks/bench_teacher.py throughput --queries 8 --k 20 --threads 2
    nice -n 10 .venv/bin/python benchmarks/bench_teacher.py backends --queries 10 --k 20 --threads 2
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
# every ratio refers to this: torch fp32 with the left-padded, masked batches causal teachers were scored with before
# the right-padded layout (QuestionLikelihoodScorer.causal_layout)
BASELINE = "torch fp32 left-padded (baseline: the path before)"
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
    retriever.index(
        bm25s.tokenize([f"{p.title} {p.text}" for p in corpus], stopwords="en", show_progress=False),
        show_progress=False,
    )
    docs, scores = retriever.retrieve(
        bm25s.tokenize(questions, stopwords="en", show_progress=False), k=k, show_progress=False
    )
    return docs.tolist(), scores


def make_scorer(
    precision: str,
    cache=None,
    use_chat_template: bool = False,
    batch_size: int = 16,
    backend: str = "torch",
    model: str | None = None,
):
    from spart.teacher import QuestionLikelihoodScorer

    scorer = QuestionLikelihoodScorer(
        model,
        precision=precision,
        device="cpu",
        cache=cache,
        batch_size=batch_size,
        use_chat_template=use_chat_template,
        progress_bar=True,
        backend=backend,
    )
    t0 = time.perf_counter()
    scorer.warm_up()
    print(
        f"# loaded teacher ({precision}, backend={scorer.resolved_backend}, layout={scorer.causal_layout}, "
        f"chat={use_chat_template}) in "
        f"{time.perf_counter() - t0:.1f}s",
        flush=True,
    )
    return scorer


def timed_topk(scorer, questions, passages) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    scores = scorer.score_topk(questions, passages)
    return scores, time.perf_counter() - t0


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def workload(args) -> tuple[list[str], list[list], int]:
    """The first ``--queries`` pydocs test queries with their BM25 top-``--k``: ``(questions, passages, pairs)``."""
    corpus, queries, qrels = load_pydocs()
    qids = sorted(qrels)[: args.queries]
    questions = [queries[q] for q in qids]
    top, _ = bm25_topk(corpus, questions, args.k)
    passages = [[corpus[i] for i in row] for row in top]
    n = len(questions) * args.k
    print(
        f"# workload: {len(questions)} pydocs test queries x BM25 top-{args.k} = {n} pairs, "
        f"threads={args.threads}, batch_size={args.batch_size}",
        flush=True,
    )
    return questions, passages, n


def cmd_throughput(args) -> dict:
    from spart.teacher import ScoreCache

    questions, passages, n = workload(args)
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


def cmd_backends(args) -> dict:
    """Today's torch path vs the ONNX Runtime backends, per teacher, on the same pairs."""
    from bench_embedding import cpu_description
    from teacher_llamacpp import llamacpp_available, llamacpp_scorer

    cpu = cpu_description()
    print(f"# CPU: {cpu['model']}; key flags: {' '.join(cpu['key_flags'])}\n# flags: {cpu['flags']}")
    questions, passages, n = workload(args)
    teachers = [("SmolLM2-135M-Instruct (packaged GGUF)", None)] + [(Path(m).name, m) for m in args.extra_model]
    if not args.extra_model:
        print("# Qwen2.5-0.5B: skipped (not installed here; pass --extra-model PATH/to/qwen2.5-0.5b.gguf)")
    results = {}
    for label, model in teachers:
        configs = {
            BASELINE: ("fp32", "torch-left"),
            "torch fp32": ("fp32", "torch"),
            "torch auto left-padded": ("auto", "torch-left"),
            "torch auto precision (today's default)": ("auto", "torch"),
            "torch bf16 weights": ("bf16-weights", "torch"),
            "onnx fp32": ("fp32", "onnx"),
            "onnx-int8": ("auto", "onnx-int8"),
            "llama.cpp (benchmark only)": ("fp32", "llama.cpp"),
            "torch fp32 + torch.compile (benchmark only)": ("fp32", "compile"),
            "torch auto precision + torch.compile (benchmark only)": ("auto", "compile"),
        }
        if not llamacpp_available():
            print("# llama.cpp: skipped (llama-cpp-python is not installed; docs/teacher.md has the build command)")
            del configs["llama.cpp (benchmark only)"]
        if args.only:
            wanted = [BASELINE] + [c.strip() for c in args.only.split(",")]
            unknown = [c for c in wanted if c not in configs]
            if unknown:
                raise SystemExit(f"--only: unknown or unavailable configuration(s) {unknown}; have {list(configs)}")
            configs = {name: configs[name] for name in wanted}
        scorers, loaded = {}, {}
        for name, (precision, backend) in configs.items():
            t0 = time.perf_counter()
            if backend == "llama.cpp":
                scorers[name] = llamacpp_scorer(model, batch_size=args.batch_size)
            elif backend == "compile":  # inductor, shapes marked dynamic: one compile for every batch width
                import torch

                # inductor names its generated modules after a torchbench-style "--only" in sys.argv and writes it
                # unescaped into Python source: a configuration name with a quote breaks the compile
                sys.argv = sys.argv[:1]
                scorers[name] = make_scorer(precision, batch_size=args.batch_size, backend="torch", model=model)
                scorers[name].model = torch.compile(scorers[name].model, dynamic=True)
            elif backend == "torch-left":  # the layout every causal teacher used before the right-padded one
                scorers[name] = make_scorer(precision, batch_size=args.batch_size, backend="torch", model=model)
                scorers[name].causal_layout = "left"
            else:
                scorers[name] = make_scorer(precision, batch_size=args.batch_size, backend=backend, model=model)
            scorers[name].progress_bar = False
            loaded[name] = time.perf_counter() - t0
        for name in ("torch auto precision (today's default)", "torch auto left-padded"):
            if name in scorers and scorers[name].resolved_precision == "fp32":
                del scorers[name]  # the same as an fp32 configuration on this CPU
        probe = make_scorer("auto", batch_size=args.batch_size, backend="auto", model=model)
        auto = f"{probe.resolved_backend} ({probe.resolved_precision})"
        del probe
        rounds = {name: [] for name in scorers}  # seconds per alternating round
        scores = {}
        warm = {}
        for name, scorer in scorers.items():  # warm-up: two widths (a compiled model compiles here)
            t0 = time.perf_counter()
            scorer.score_topk(questions[:1], [passages[0][:2]])
            if len(questions) > 1:
                scorer.score_topk(questions[1:2], [passages[1][: args.batch_size]])
            warm[name] = time.perf_counter() - t0
        for _ in range(args.repeats):
            for name, scorer in scorers.items():
                got, seconds = timed_topk(scorer, questions, passages)
                scores[name] = got
                rounds[name].append(seconds)
                print(f"#   {label}: {name}: {seconds:.1f}s", flush=True)
        best = {name: min(times) for name, times in rounds.items()}
        base = best[BASELINE]
        # the ratio within each round (configurations alternate, so a round shares the machine's state), and its
        # median: steadier than a ratio of best times when the machine's speed drifts between rounds
        per_round = {name: [b / t for b, t in zip(rounds[BASELINE], times)] for name, times in rounds.items()}
        table = {
            name: {
                "pairs_per_s": n / best[name],
                "vs_torch_fp32": base / best[name],
                "vs_torch_fp32_per_round": per_round[name],
                "vs_torch_fp32_median_of_rounds": float(np.median(per_round[name])),
                "seconds_per_round": rounds[name],
                "load_or_export_s": loaded[name],
                "warm_up_s": warm[name],
                **agree(scores[name], scores[BASELINE]),
            }
            for name in scorers
        }
        print(f"\n{label}: backend='auto' resolves to {auto}")
        print(
            f"{'configuration':56s} {'pairs/s':>8s} {'vs fp32':>8s} {'median':>7s} {'rho mean':>9s} {'rho min':>8s} "
            f"{'top-1':>6s} {'load s':>7s} {'warm s':>7s}"
        )
        for name, row in table.items():
            print(
                f"{name:56s} {row['pairs_per_s']:8.2f} {row['vs_torch_fp32']:7.2f}x "
                f"{row['vs_torch_fp32_median_of_rounds']:6.2f}x {row['mean_spearman']:9.4f} "
                f"{row['min_spearman']:8.4f} {row['top1_agreement']:6.2f} {row['load_or_export_s']:7.1f} "
                f"{row['warm_up_s']:7.1f}"
            )
        print("(vs fp32: best time against the baseline's best; median: over rounds, of the ratio within a round)")
        results[label] = {"auto": auto, "pairs": n, "cpu": cpu, "configurations": table}
        del scorers
    return results


def agree(scores: np.ndarray, reference: np.ndarray) -> dict:
    """How closely a low-precision run reproduces the fp32 scores and per-question rankings."""
    diff = np.abs(scores - reference)
    rho = [spearman(a, b) for a, b in zip(scores, reference)]
    top1 = float(np.mean(scores.argmax(1) == reference.argmax(1)))
    return {
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "mean_spearman": float(np.mean(rho)),
        "min_spearman": float(np.min(rho)),
        "top1_agreement": top1,
    }


def ranx_eval(qrels, runs: dict[str, dict[str, dict[str, float]]], metrics: list[str]):
    from ranx import Qrels, Run, compare

    report = compare(
        Qrels(qrels), [Run(r, name=name) for name, r in runs.items()], metrics=metrics, stat_test="student", max_p=0.05
    )
    return report


def cmd_rerank(args) -> dict:
    from spart.teacher import ScoreCache

    corpus, queries, qrels = load_pydocs()
    qids = sorted(qrels)[: args.queries]
    sub_qrels = {q: {d: int(r) for d, r in qrels[q].items()} for q in qids}
    questions = [queries[q] for q in qids]
    top, bm25_scores = bm25_topk(corpus, questions, args.k)
    passages = [[corpus[i] for i in row] for row in top]
    runs = {
        "BM25": {q: {corpus[i].id: float(s) for i, s in zip(row, srow)} for q, row, srow in zip(qids, top, bm25_scores)}
    }
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
            part, dt = timed_topk(scorer, questions[start : start + args.chunk], passages[start : start + args.chunk])
            parts.append(part)
            t += dt
            print(f"#   {name}: {start + len(part)}/{len(questions)} questions, {t:.0f}s", flush=True)
        scores = np.concatenate(parts)
        print(f"# {name}: {len(questions) * args.k} pairs in {t:.1f}s ({scorer.stats})", flush=True)
        runs[name] = {q: {corpus[i].id: float(s) for i, s in zip(row, srow)} for q, row, srow in zip(qids, top, scores)}
        del scorer
    metrics = ["mrr@10", "ndcg@10", "recall@1", "recall@5", "recall@10", f"recall@{args.k}"]
    report = ranx_eval(sub_qrels, runs, metrics)
    print(
        f"\n{len(qids)} pydocs test queries, BM25 top-{args.k} reranked (ranx; superscripts: significantly "
        "better than that run, paired t-test p<0.05):"
    )
    print(report)
    return {"queries": len(qids), "k": args.k, "metrics": report.to_dict()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name in ("throughput", "backends", "rerank"):
        p = sub.add_parser(name)
        p.add_argument("--queries", type=int, default={"throughput": 8, "backends": 10, "rerank": 30}[name])
        p.add_argument("--k", type=int, default=20)
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--batch-size", type=int, default=16)
        p.add_argument("--json", type=Path, default=None, help="also write the results here")
        if name == "backends":
            p.add_argument(
                "--repeats",
                type=int,
                default=1,
                help="alternating passes over all pairs (best kept; ratios per round too)",
            )
            p.add_argument(
                "--extra-model",
                action="append",
                default=[],
                help="another teacher (a .gguf file or HF directory), e.g. Qwen2.5-0.5B; repeatable",
            )
            p.add_argument(
                "--only",
                default=None,
                help="comma-separated configurations besides the torch fp32 baseline (default: all available)",
            )
        if name == "rerank":
            p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "bf16-weights"])
            p.add_argument("--configs", default="plain,chat", help="comma-separated: plain, chat")
            p.add_argument("--chunk", type=int, default=3, help="questions per scoring call (cache checkpoint)")
            p.add_argument("--cache", default=None, help="SQLite score cache (reruns are then free)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    commands = {"throughput": cmd_throughput, "backends": cmd_backends, "rerank": cmd_rerank}
    result = commands[args.cmd](args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
