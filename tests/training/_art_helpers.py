"""Synthetic questions, evidence and a lexical teacher for the ART trainer tests (module-level for spawn)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from spart.training.art_data import Evidence

WORDS = (
    "apple river castle engine violin planet copper garden falcon marble harbor lantern meadow orbit "
    "pepper quartz saddle timber velvet walnut anchor bridge canyon desert forest glacier island jungle"
).split()


def synthetic_evidence(n: int = 40, seed: int = 0) -> Evidence:
    rng = random.Random(seed)
    ids, titles, texts = [], [], []
    for i in range(n):
        ids.append(f"e{i}")
        titles.append(rng.choice(WORDS))
        texts.append(" ".join(rng.sample(WORDS, 6)))
    return Evidence(ids, titles, texts)


def synthetic_questions(n: int = 16, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.sample(WORDS, 2)) for _ in range(n)]


class LexicalTeacher:
    """A deterministic stand-in for the LM teacher: score = number of question words in the passage.

    It has the scorer's interface (``score_topk`` and ``stats``) and gives the student a learnable target.
    """

    def __init__(self) -> None:
        self.stats = {"pairs": 0, "cache_hits": 0, "scored": 0}
        self.calls = 0

    def score_topk(self, questions, passages) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(questions), len(passages[0])), dtype=np.float32)
        for b, (question, row) in enumerate(zip(questions, passages)):
            words = set(question.split())
            for k, passage in enumerate(row):
                out[b, k] = 2.0 * len(words & set(f"{passage.title} {passage.text}".split()))
        self.stats["pairs"] += out.size
        self.stats["scored"] += out.size
        return out


def art_config(output_dir: Path, model_dir: Path, **overrides):
    from spart.training.config import ARTTrainingConfig

    values = dict(
        output_dir=output_dir,
        model=str(model_dir),
        questions="unused.txt",
        evidence="unused.tsv",
        batch_size=4,
        max_steps=6,
        lr=1e-3,
        warmup_steps=1,
        precision="fp32",
        checkpoint_every=2,
        log_every=1,
        top_k=5,
        reindex_every=3,
        query_max_length=16,
        passage_max_length=24,
        progress=False,
        num_threads=1,
        encode_batch_size=16,
        pooling="mean",
        temperature=1.0,
    )
    values.update(overrides)
    return ARTTrainingConfig(**values)
