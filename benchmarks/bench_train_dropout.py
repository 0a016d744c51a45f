"""Time of dropout in CPU training: torch's native dropout vs spart's (``spart.training.dropout``), kernels and a
whole ART step.

Part 1, kernels (one chunk's worth of tensors, forward + backward): the hidden-state dropout of
``chunk x tokens x hidden`` activations, and BERT self-attention with dropout on its probabilities (PyTorch's SDPA
with ``dropout_p`` vs :func:`~spart.training.dropout.fast_dropout_attention`), with the same attention without
dropout as the floor. Part 2: one ART step of the packaged all-MiniLM-L6-v2 (shared tower, ``--precision``,
GradCache chunks of ``--chunk``, ``--batch`` questions x ``--top-k`` passages of ``--passage-tokens`` tokens, a
cost-free teacher) with native dropout (the baseline), spart's dropout, and dropout off (the floor), each in a
fresh subprocess, the best of ``--steps`` steps; ``--trainer contrastive`` times the contrastive trainer's step
instead (SPIDER, few-shot, ``spart adapt --method pairs``: ``--batch`` queries with a positive and a negative
each). Also the fraction of elements the masks kept (expected 1 - p).

Run alone (from the repo root)::

    nice -n 10 .venv/bin/python benchmarks/bench_train_dropout.py --batch 16 --top-k 40 --precision auto
    nice -n 10 .venv/bin/python benchmarks/bench_train_dropout.py --trainer contrastive --batch 32 --skip-kernels
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

MODES = ("native", "fast", "off")


def best_time(fn, repeats: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def kernels(args) -> None:
    import torch
    import torch.nn.functional as F

    from spart.training.dropout import fast_dropout, fast_dropout_attention

    torch.manual_seed(0)
    dtype = torch.bfloat16 if args.precision == "auto" else torch.float32
    heads, d = 12, 32
    hidden = torch.randn(args.chunk, args.passage_tokens, heads * d, dtype=dtype, requires_grad=True)
    q, k, v = (
        torch.randn(args.chunk, heads, args.passage_tokens, d, dtype=dtype, requires_grad=True) for _ in range(3)
    )
    mask = torch.ones(args.chunk, 1, args.passage_tokens, args.passage_tokens, dtype=torch.bool)

    class Module(torch.nn.Module):
        pass

    module = Module().train()

    def fwd_bwd(fn):
        return lambda: fn().float().sum().backward()

    rows = [
        ("hidden dropout, native", fwd_bwd(lambda: F.dropout(hidden, 0.1, True))),
        ("hidden dropout, spart", fwd_bwd(lambda: fast_dropout(hidden, 0.1, True))),
        ("attention + dropout, native SDPA", fwd_bwd(lambda: F.scaled_dot_product_attention(q, k, v, mask, 0.1))),
        ("attention + dropout, spart", fwd_bwd(lambda: fast_dropout_attention(module, q, k, v, mask, 0.1)[0])),
        ("attention, no dropout, SDPA", fwd_bwd(lambda: F.scaled_dot_product_attention(q, k, v, mask, 0.0))),
    ]
    print(
        f"\n## kernels, forward + backward ({dtype}; hidden {tuple(hidden.shape)}, attention {tuple(q.shape)}), "
        "best of 3"
    )
    base = {}
    for name, fn in rows:
        seconds = best_time(fn)
        kind = name.split(",")[0]
        base.setdefault(kind, seconds)
        print(f"{name:>36s} {seconds * 1000:9.1f} ms {base[kind] / seconds:7.2f}x")
    kept = fast_dropout(torch.ones(4_000_000), 0.1, True).ne(0).float().mean().item()
    print(f"# spart mask kept {kept:.5f} of 4M elements (expected 0.89999)")


def contrastive_worker(args) -> float:
    """One step of the contrastive trainer (SPIDER, few-shot and ``spart adapt --method pairs``): ``--batch``
    queries, each with a positive and a hard negative passage; the best of ``--steps``."""
    import torch
    from bench_art_memory import WORDS, no_dropout

    from spart.encoders.loading import packaged_minilm_path
    from spart.training.config import ContrastiveTrainingConfig
    from spart.training.contrastive import ContrastiveTrainer
    from spart.training.models import spider_encoder

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)

    def passage(i):
        return (f"p{i}", f"title {i}", " ".join(WORDS[(i + j) % len(WORDS)] for j in range(args.passage_tokens)))

    examples = [
        {
            "query": f"{WORDS[i % len(WORDS)]} {WORDS[(3 * i) % len(WORDS)]}",
            "positive": passage(2 * i),
            "negative": passage(2 * i + 1),
        }
        for i in range(args.batch)
    ]
    with tempfile.TemporaryDirectory() as out:
        config = ContrastiveTrainingConfig(
            output_dir=out,
            model=str(packaged_minilm_path()),
            batch_size=args.batch,
            precision=args.precision,
            query_max_length=32,
            passage_max_length=args.passage_tokens,
            progress=False,
            num_threads=args.threads,
            grad_cache_chunk=args.chunk,
            fast_dropout=args.mode == "fast",
            data={"kind": "spider", "corpus": "unused.tsv", "spans": "unused.jsonl"},
        )
        encoder = spider_encoder(config, torch.device("cpu"))
        if args.mode == "off":
            no_dropout(encoder)
        trainer = ContrastiveTrainer(config, encoder, examples)
        trainer.encoder.train()
        return min(timed(lambda: trainer.accumulate_gradients(0)) for _ in range(args.steps))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def worker(args) -> None:
    if args.trainer == "contrastive":
        print(json.dumps({"seconds": contrastive_worker(args)}))
        return
    from bench_art_memory import art_trainer

    with tempfile.TemporaryDirectory() as out:
        trainer = art_trainer(out, args, fast_dropout=args.mode == "fast", dropout=args.mode != "off")
        seconds = min(
            timed(lambda: trainer.compute_loss_and_backward(trainer.local_questions(0))) for _ in range(args.steps)
        )
    print(json.dumps({"seconds": seconds}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--top-k", type=int, default=40)
    parser.add_argument("--passage-tokens", type=int, default=128)
    parser.add_argument("--chunk", type=int, default=64, help="GradCache chunk (texts)")
    parser.add_argument("--precision", default="auto", help="auto (bf16 where native, the default) or fp32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2, help="steps per mode; the best is reported")
    parser.add_argument("--skip-step", action="store_true", help="kernels only")
    parser.add_argument("--skip-kernels", action="store_true", help="the training step only")
    parser.add_argument(
        "--trainer",
        choices=("art", "contrastive"),
        default="art",
        help="whose step to time: ART (--batch questions x --top-k passages) or the contrastive trainer "
        "(--batch queries, a positive and a negative each)",
    )
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.mode:
        worker(args)
        return 0

    import torch
    from bench_embedding import cpu_description

    torch.set_num_threads(args.threads)
    cpu = cpu_description()
    print(f"# CPU: {cpu['model']} ({cpu['cpus']} CPUs); key flags: {' '.join(cpu['key_flags'])}")
    print(f"# torch {torch.__version__}, {args.threads} threads, precision {args.precision}")
    if not args.skip_kernels:
        kernels(args)
    if args.skip_step:
        return 0
    if args.trainer == "art":
        what = f"one ART step: {args.batch} questions x top {args.top_k} = {args.batch * args.top_k} passages"
    else:
        what = f"one contrastive step: {args.batch} queries, {2 * args.batch} passages"
    print(f"\n## {what} of {args.passage_tokens} tokens, GradCache chunks of {args.chunk}, best of {args.steps}")
    times = {}
    for mode in MODES:
        command = [sys.executable, __file__, "--mode", mode]
        for flag in ("batch", "top_k", "passage_tokens", "chunk", "precision", "threads", "steps", "trainer"):
            command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        times[mode] = json.loads(out.strip().splitlines()[-1])["seconds"]
        label = {"native": "native dropout (baseline)", "fast": "spart dropout", "off": "no dropout (floor)"}[mode]
        print(f"{label:>36s} {times[mode]:9.1f} s  {times['native'] / times[mode]:7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
