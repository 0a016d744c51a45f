"""Round-trip filtering (InPars, Promptagator): keep a generated question only if a retriever finds the passage it
was written from."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def source_ranks(
    query_embeddings: np.ndarray,
    passage_embeddings: np.ndarray,
    source_rows: Sequence[int],
    batch_size: int = 256,
) -> np.ndarray:
    """The 1-based rank of each question's source passage under inner-product search over all passages.

    Exact (brute force, in batches of questions, so memory is ``batch_size x n_passages`` scores). A passage
    scoring the same as the source counts as ranked above it (the pessimistic rank), so ties never help a
    question through the filter.

    :param query_embeddings: ``(n_questions, dim)``.
    :param passage_embeddings: ``(n_passages, dim)``.
    :param source_rows: row of each question's source passage.
    :returns: int64 ranks, ``1`` = the source passage is the top hit.
    """
    q = np.asarray(query_embeddings, dtype=np.float32)
    p = np.asarray(passage_embeddings, dtype=np.float32)
    rows = np.asarray(source_rows, dtype=np.int64)
    if q.ndim != 2 or p.ndim != 2 or q.shape[1] != p.shape[1]:
        raise ValueError(f"embedding shapes do not match: questions {q.shape}, passages {p.shape}")
    if len(rows) != len(q):
        raise ValueError(f"{len(rows)} source rows for {len(q)} questions")
    if len(rows) and (rows.min() < 0 or rows.max() >= len(p)):
        raise ValueError(f"a source row is outside the {len(p)} passages")
    ranks = np.empty(len(q), dtype=np.int64)
    for start in range(0, len(q), batch_size):
        scores = q[start : start + batch_size] @ p.T
        own = scores[np.arange(len(scores)), rows[start : start + batch_size]]
        # rank = passages scoring at least as high as the source (the source itself included)
        ranks[start : start + batch_size] = (scores >= own[:, None]).sum(axis=1)
    return ranks
