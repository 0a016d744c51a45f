"""Softmax cross-entropy over in-batch candidates (DPR / SPIDER)."""

from __future__ import annotations

import torch
from torch import nn


class InBatchContrastiveLoss(nn.Module):
    """Each query's positive against every other passage of the (global) batch.

    With ``B`` queries, each with one positive and one hard negative, the candidates are the ``2B`` passages
    of the batch; the score is the dot product (optionally divided by ``temperature``) and the loss is the
    mean over queries of ``-log softmax(scores)[positive]``. This is DPR's ``BiEncoderNllLoss`` and what
    SPIDER trains with (temperature 1, i.e. plain dot product).

    Candidate order does not matter (softmax is permutation invariant), so distributed training can lay the
    gathered passages out rank by rank and only needs each query's positive index.

    Usage::

        loss_fn = InBatchContrastiveLoss()
        loss = loss_fn(q, p, positive_index=torch.arange(len(q)))  # p = [positives; negatives]

    :param temperature: scores are divided by it (1.0 = DPR/SPIDER).
    """

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature

    def scores(self, queries: torch.Tensor, passages: torch.Tensor) -> torch.Tensor:
        """``(n_queries, n_passages)`` similarity matrix, in float32 whatever the autocast dtype."""
        return queries.float() @ passages.float().T / self.temperature

    def forward(
        self,
        queries: torch.Tensor,
        passages: torch.Tensor,
        positive_index: torch.Tensor,
        candidate_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mean negative log-likelihood of each query's positive.

        :param queries: ``(n, d)`` query embeddings.
        :param passages: ``(m, d)`` candidate passage embeddings.
        :param positive_index: ``(n,)`` row of each query's positive in ``passages``.
        :param candidate_mask: optional ``(n, m)`` bool, False = exclude that candidate for that query (e.g. a
            passage that is also a positive of the query, duplicated in the batch). The positive itself must
            stay allowed.
        :returns: scalar loss.
        """
        if queries.dim() != 2 or passages.dim() != 2 or queries.shape[1] != passages.shape[1]:
            raise ValueError(
                f"expected (n, d) queries and (m, d) passages, got {tuple(queries.shape)} and {tuple(passages.shape)}"
            )
        if positive_index.shape != (queries.shape[0],):
            raise ValueError(f"positive_index must have shape ({queries.shape[0]},), got {tuple(positive_index.shape)}")
        if queries.shape[0] == 0:
            raise ValueError("empty batch: no queries")
        if int(positive_index.min()) < 0 or int(positive_index.max()) >= passages.shape[0]:
            raise ValueError(f"positive_index out of range for {passages.shape[0]} passages")
        scores = self.scores(queries, passages)
        if candidate_mask is not None:
            if candidate_mask.shape != scores.shape:
                raise ValueError(
                    f"candidate_mask must have shape {tuple(scores.shape)}, got {tuple(candidate_mask.shape)}"
                )
            rows = torch.arange(len(positive_index), device=scores.device)
            if not bool(candidate_mask[rows, positive_index].all()):
                raise ValueError("candidate_mask excludes a query's own positive")
            scores = scores.masked_fill(~candidate_mask, float("-inf"))
        return nn.functional.cross_entropy(scores, positive_index.to(scores.device))
