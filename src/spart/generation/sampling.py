"""Which passages get a question: spread across documents, reproducible from a seed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from spart.data.passages import Passage


def sample_passages(
    passages: Sequence[Passage],
    n: int,
    seed: int = 0,
    *,
    min_words: int = 20,
    document_separator: str | None = " — ",
) -> list[int]:
    """Indices of ``n`` passages drawn round-robin over documents, so that every document is visited before any
    document gives a second passage.

    Documents are passages sharing a title (up to ``document_separator``, so that "Page — Section" titles group
    by page). Passages under ``min_words`` words ("See the next question.") are skipped: they rarely answer a
    question of their own.

    :returns: positions in ``passages``, in generation order (deterministic for a given seed and corpus).
    :raises ValueError: ``n`` is not positive or no passage is long enough.
    """
    if n <= 0:
        raise ValueError(f"the number of passages to sample must be positive, got {n}")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, passage in enumerate(passages):
        if len(passage.text.split()) < min_words:
            continue
        title = passage.title or passage.id
        key = title.split(document_separator)[0] if document_separator else title
        groups[key].append(i)
    if not groups:
        raise ValueError(f"no passage has at least {min_words} words")
    rng = np.random.default_rng(seed)
    documents = [groups[k] for k in sorted(groups)]
    order = rng.permutation(len(documents))
    queues = [list(rng.permutation(documents[d])) for d in order]
    chosen: list[int] = []
    depth = 0
    while len(chosen) < n and any(depth < len(q) for q in queues):
        for queue in queues:
            if depth < len(queue):
                chosen.append(int(queue[depth]))
                if len(chosen) == n:
                    break
        depth += 1
    return chosen
