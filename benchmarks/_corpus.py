"""Benchmark corpora: the wiki passages (15.5k) and a 10x corpus derived from them, plus the trivia questions.

The 10x corpus is copy 0 = the original passages, and copies 1..9 = every passage perturbed with its own
seeded RNG: each word is dropped with probability 0.15 or replaced (p = 0.10) by a word drawn from the
corpus' word-frequency distribution, and the word order is shuffled. Copies get unique ids
(``wiki:123~c4``) and keep their title. So copies are not identical texts, have different lengths, term
frequencies and posting lists (BM25 scores of copies differ, no 10-way ties), while vocabulary and
statistics stay Wikipedia-like.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SPART_SHARED_DATA", REPO.parent / "shared" / "data"))


def load_passages(path: Path | None = None) -> list[tuple[str, str, str]]:
    """``(id, text, title)`` rows of ``wiki/passages.tsv``."""
    path = path or DATA / "wiki" / "passages.tsv"
    if not path.is_file():
        raise FileNotFoundError(f"passages file not found: {path} (set SPART_SHARED_DATA)")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader)
        if header[:3] != ["id", "text", "title"]:
            raise ValueError(f"{path}:1: expected header id/text/title, got {header}")
        return [(row[0], row[1], row[2]) for row in reader]


def load_questions() -> list[str]:
    """The trivia questions of ``trivia-test.csv`` then ``trivia-train.csv``."""
    questions = []
    for name in ("trivia-test.csv", "trivia-train.csv"):
        with open(DATA / "wiki" / name, encoding="utf-8") as fh:
            questions += [line.split("\t", 1)[0] for line in fh if line.strip()]
    return questions


def scale_corpus(passages: list[tuple[str, str, str]], factor: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """``factor`` copies of ``passages``: the originals plus ``factor - 1`` perturbed copies (see module doc)."""
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    split = [text.split() for _, text, _ in passages]
    lengths = np.array([len(t) for t in split])
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    flat = np.array([w for t in split for w in t], dtype=object)
    vocab, counts = np.unique(flat, return_counts=True)
    out = list(passages)
    for copy in range(1, factor):
        rng = np.random.default_rng([seed, copy])
        u = rng.random(len(flat))
        toks = flat.copy()
        replace = (u >= 0.15) & (u < 0.25)
        # one draw for the whole copy: the frequency table's CDF is built once, not per passage
        toks[replace] = rng.choice(vocab, size=int(replace.sum()), p=counts / counts.sum())
        keep = u >= 0.15
        for i, (pid, _, title) in enumerate(passages):
            lo, hi = bounds[i], bounds[i + 1]
            kept = toks[lo:hi][keep[lo:hi]]
            out.append((f"{pid}~c{copy}", " ".join(kept[rng.permutation(len(kept))]), title))
    return out
