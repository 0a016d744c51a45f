"""The generated questions as a BEIR data set: ``corpus.jsonl``, ``queries.jsonl`` and the pseudo-qrels
(question -> the passage it was written from) split into ``qrels/pseudo-train.tsv`` and ``qrels/pseudo-dev.tsv``,
plus ``pseudo-train-questions.txt`` (the training questions alone, for ART)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from spart.atomic import atomic_write
from spart.data.passages import Passage

TRAIN, DEV = "pseudo-train", "pseudo-dev"


def dev_split(question_ids: Sequence[str], dev_fraction: float, seed: int = 0, max_dev: int | None = None) -> set[str]:
    """The ids that go to pseudo-dev: the ``dev_fraction`` with the smallest seeded hash (stable under resumes and
    independent of order), at most ``max_dev`` of them (``None``: no cap). The cap keeps the audit and checkpoint
    selection, whose cost grows with pseudo-dev, bounded when many questions are generated: the rest train."""
    if not 0 <= dev_fraction < 1:
        raise ValueError(f"dev_fraction must be in [0, 1), got {dev_fraction}")
    if max_dev is not None and max_dev < 0:
        raise ValueError(f"max_dev must be >= 0 (or None: no cap), got {max_dev}")
    ranked = sorted(question_ids, key=lambda q: hashlib.sha256(f"{seed}:{q}".encode()).hexdigest())
    n = round(dev_fraction * len(ranked))
    return set(ranked[: n if max_dev is None else min(n, max_dev)])


def write_corpus(passages: Iterable[Passage], path: str | Path) -> Path:
    """A BEIR ``corpus.jsonl`` of the passages (atomically)."""
    with atomic_write(path, "w", encoding="utf-8") as f:
        for p in passages:
            f.write(json.dumps({"_id": p.id, "title": p.title or "", "text": p.text}, ensure_ascii=False) + "\n")
    return Path(path)


def write_pseudo_dataset(
    out_dir: str | Path,
    questions: Sequence[tuple[str, str, str]],
    dev_ids: set[str],
) -> dict[str, int]:
    """Write queries and pseudo-qrels for ``(question_id, question, source_passage_id)`` triples.

    :returns: the number of questions per split.
    """
    out = Path(out_dir)
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "queries.jsonl", "w", encoding="utf-8") as f:
        for qid, text, _ in questions:
            f.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    counts = {}
    for split in (TRAIN, DEV):
        chosen = [(q, t, p) for q, t, p in questions if (q in dev_ids) == (split == DEV)]
        counts[split] = len(chosen)
        with atomic_write(out / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for qid, _, pid in chosen:
                f.write(f"{qid}\t{pid}\t1\n")
        if split == TRAIN:
            with atomic_write(out / "pseudo-train-questions.txt", "w", encoding="utf-8") as f:
                for _, text, _ in chosen:
                    f.write(text.replace("\n", " ") + "\n")
    return counts
