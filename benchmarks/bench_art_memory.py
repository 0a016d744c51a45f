"""Peak memory and time of one ART training step, with and without GradCache over the passages.

The ART step runs the student's passage tower, with its graph, over batch x top_k passages; that (not the teacher,
whose logits are kept only at the question positions) is what grows with the candidate depth. This measures one
step of the packaged all-MiniLM-L6-v2 as student (shared tower, fp32 or the machine's bf16 autocast), a fixed
random teacher (no LM: the teacher's cost is not what is measured), ``--batch`` questions x ``--top-k``
passages of ``--passage-tokens`` tokens, each configuration in a fresh subprocess. Memory as in
``bench_grad_cache_memory.py``: the peak-RSS counter is reset just before the step and the step's extra memory is
``VmHWM - VmRSS`` (activations, gradients, temporaries). Also the relative difference between the configurations'
gradients (the same step, dropout off so both see the same network): float rounding in fp32 (the default
``--precision``); under bf16 autocast the chunks' kernels round differently, so expect about 1e-2 there.

Run (from the repo root)::

    nice -n 10 .venv/bin/python benchmarks/bench_art_memory.py --batch 16 --top-k 32 --chunks 0,64
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

from bench_grad_cache_memory import status_kib  # noqa: E402 - the /proc reader of the GradCache benchmark


class RandomTeacher:
    """Fixed pseudo-random scores (seeded by the question and passage ids): a teacher with no cost."""

    def __init__(self) -> None:
        self.stats = {"pairs": 0, "cache_hits": 0, "scored": 0}

    def score_topk(self, questions, passages):
        import zlib

        import numpy as np

        out = np.array(
            [[zlib.crc32(f"{q}|{p.id}".encode()) % 1000 / 100.0 for p in row] for q, row in zip(questions, passages)],
            dtype=np.float32,
        )
        self.stats["pairs"] += out.size
        return out


WORDS = "river castle engine violin planet copper garden falcon marble harbor lantern meadow orbit".split()


def no_dropout(encoder) -> None:
    """Set every dropout of ``encoder`` to p = 0 (also the attention's, which reads its module's ``p``)."""
    import torch

    for module in encoder.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def art_trainer(out: str, args, *, fast_dropout: bool = True, dropout: bool = True):
    """An ART trainer of the packaged MiniLM on synthetic evidence and questions, with a :class:`RandomTeacher`,
    the evidence indexed and the encoder in training mode: one step is ``trainer.compute_loss_and_backward(
    trainer.local_questions(0))``. ``args`` gives batch, top_k, passage_tokens, precision, threads and chunk
    (0 or None: no GradCache)."""
    import torch

    from spart.encoders.loading import packaged_minilm_path
    from spart.training.art import ARTTrainer
    from spart.training.art_data import Evidence
    from spart.training.config import ARTTrainingConfig
    from spart.training.models import art_encoder

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    n = max(4 * args.top_k, 256)
    texts = [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(args.passage_tokens)) for i in range(n)]
    evidence = Evidence([f"p{i}" for i in range(n)], [f"title {i}" for i in range(n)], texts)
    questions = [f"{WORDS[i % len(WORDS)]} {WORDS[(3 * i) % len(WORDS)]}" for i in range(args.batch)]
    config = ARTTrainingConfig(
        output_dir=out,
        model=str(packaged_minilm_path()),
        shared=True,
        questions="unused.txt",
        evidence="unused.tsv",
        batch_size=args.batch,
        top_k=args.top_k,
        passage_max_length=args.passage_tokens,
        query_max_length=32,
        precision=args.precision,
        reindex_every=0,
        progress=False,
        num_threads=args.threads,
        grad_cache_chunk=args.chunk or None,
        fast_dropout=fast_dropout,
    )
    encoder = art_encoder(config, torch.device("cpu"))
    if not dropout:
        no_dropout(encoder)
    trainer = ARTTrainer(config, encoder, questions, evidence, RandomTeacher())
    trainer.reindex(0)
    trainer.encoder.train()
    return trainer


def worker(args) -> None:
    import torch

    with tempfile.TemporaryDirectory() as out:
        trainer = art_trainer(out, args, dropout=False)  # dropout off: both runs must see the same network
        before = status_kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS counter (VmHWM) to the current RSS
        start = time.perf_counter()
        loss, _ = trainer.compute_loss_and_backward(trainer.local_questions(0))
        seconds = time.perf_counter() - start
        peak = status_kib("VmHWM")
        grads = torch.cat([p.grad.flatten() for p in trainer.encoder.parameters() if p.grad is not None])
        torch.save(grads, args.grads)
    print(json.dumps({"loss": float(loss), "seconds": seconds, "rss_before_mb": before / 1024, "peak_mb": peak / 1024}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--top-k", type=int, default=32)
    parser.add_argument("--passage-tokens", type=int, default=128)
    parser.add_argument("--chunks", default="0,64", help="GradCache chunk sizes to compare (0: none, the baseline)")
    parser.add_argument("--precision", default="fp32", help="fp32 (default) or auto (bf16 where native)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunk", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--grads", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.grads:
        worker(args)
        return 0

    import torch
    from bench_embedding import cpu_description

    cpu = cpu_description()
    print(f"# CPU: {cpu['model']} ({cpu['cpus']} CPUs); key flags: {' '.join(cpu['key_flags'])}")
    print(
        f"# one ART step: {args.batch} questions x top {args.top_k} = {args.batch * args.top_k} passages of "
        f"{args.passage_tokens} tokens, precision {args.precision}"
    )
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for chunk in [int(c) for c in args.chunks.split(",")]:
            grads = Path(tmp) / f"g{chunk}.pt"
            command = [
                sys.executable,
                __file__,
                "--chunk",
                str(chunk),
                "--grads",
                str(grads),
                "--batch",
                str(args.batch),
                "--top-k",
                str(args.top_k),
                "--passage-tokens",
                str(args.passage_tokens),
                "--precision",
                args.precision,
                "--threads",
                str(args.threads),
            ]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            rows[chunk] = json.loads(out.strip().splitlines()[-1])
            rows[chunk]["grads"] = torch.load(grads)
    base = rows[min(rows)]
    print(
        f"\n{'GradCache chunk':>16s} {'step s':>8s} {'peak RSS MB':>12s} {'step MB':>8s} {'vs none':>8s}"
        f" {'grad rel diff':>14s}"
    )
    for chunk, row in rows.items():
        step_mb = row["peak_mb"] - row["rss_before_mb"]
        rel = float((row["grads"] - base["grads"]).norm() / base["grads"].norm())
        print(
            f"{chunk or 'none':>16} {row['seconds']:8.1f} {row['peak_mb']:12.0f} {step_mb:8.0f} "
            f"{step_mb / (base['peak_mb'] - base['rss_before_mb']):7.2f}x {rel:14.2e}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
