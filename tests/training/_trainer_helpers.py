"""Tiny models and synthetic examples for the trainer tests (module-level so spawned workers can use them)."""

from __future__ import annotations

import random
from pathlib import Path

import torch

WORDS = (
    "apple river castle engine violin planet copper garden falcon marble harbor lantern meadow orbit "
    "pepper quartz saddle timber velvet walnut anchor bridge canyon desert forest glacier island jungle"
).split()


def make_tiny_bert(out: Path, tokenizer_dir: Path, dropout: float) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    BertModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def synthetic_examples(n: int = 24, seed: int = 0, with_negatives: bool = True) -> list[dict]:
    """Queries are word pairs; the positive repeats them inside other words, the negative does not."""
    rng = random.Random(seed)
    examples = []
    for i in range(n):
        a, b = rng.sample(WORDS, 2)
        filler = rng.sample([w for w in WORDS if w not in (a, b)], 6)
        positive = (f"p{i}", f"title {a}", " ".join(filler[:3] + [a, b] + filler[3:]))
        negative = (f"n{i}", "other", " ".join(rng.sample([w for w in WORDS if w not in (a, b)], 8)))
        examples.append({"query": f"{a} {b}", "positive": positive, "negative": negative if with_negatives else None})
    return examples


def tiny_config(output_dir: Path, model_dir: Path, **overrides):
    from spart.training.config import ContrastiveTrainingConfig

    values = dict(
        output_dir=output_dir,
        model=str(model_dir),
        batch_size=8,
        max_steps=6,
        lr=1e-3,
        warmup_steps=1,
        precision="fp32",
        checkpoint_every=2,
        log_every=1,
        query_max_length=16,
        passage_max_length=32,
        progress=False,
        num_threads=1,
        data={"kind": "spider", "corpus": "unused.tsv", "spans": "unused.jsonl"},
    )
    values.update(overrides)
    return ContrastiveTrainingConfig(**values)


def weights(encoder) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in encoder.state_dict().items()}
