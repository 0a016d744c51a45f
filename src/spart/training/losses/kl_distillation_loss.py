"""KL divergence from a teacher's distribution over K retrieved passages to the retriever's (ART)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


class KLDistillationLoss(nn.Module):
    """``mean_b KL(teacher_b || student_b)`` over each question's K retrieved passages.

    ``student = log_softmax(student_scores)`` where the caller has already divided the dot products by the
    retriever temperature, and ``teacher = log_softmax(teacher_scores / teacher_temperature)``. The loss is
    ``(1/B) * sum_b sum_k p_t[b,k] * (log p_t[b,k] - log p_s[b,k])``, which is ART's
    ``KLDivLoss(reduction="batchmean", log_target=True)(student, teacher)``. ART uses teacher temperature 1
    (a plain softmax of the mean question log-likelihoods); it is a parameter here because a small teacher's
    mean log-likelihoods span a narrower range than T0-3B's.

    The gradient with respect to the student scores is ``(p_s - p_t) / B`` (per row, before the temperature),
    which the tests check by hand.

    Usage::

        loss_fn = KLDistillationLoss()
        loss = loss_fn(q_dot_p / tau, teacher_log_likelihoods)      # both (B, K)

    :param teacher_temperature: the teacher scores are divided by it before the softmax (ART: 1.0).
    """

    def __init__(self, teacher_temperature: float = 1.0) -> None:
        super().__init__()
        if not teacher_temperature > 0:
            raise ValueError(f"teacher_temperature must be positive, got {teacher_temperature}")
        self.teacher_temperature = float(teacher_temperature)

    def forward(
        self,
        student_scores: torch.Tensor,
        teacher_scores: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The batch-mean KL divergence.

        :param student_scores: ``(B, K)`` retriever scores (already divided by the retriever temperature).
        :param teacher_scores: ``(B, K)`` teacher scores (e.g. mean log p(question | passage)); no gradient.
        :param mask: optional ``(B, K)`` bool, ``False`` for padding slots (fewer than K passages found);
            they get zero probability under both distributions.
        :returns: a scalar tensor (float32).
        :raises ValueError: on shapes that differ or are not 2-d, or a row with no valid slot.
        """
        if student_scores.dim() != 2 or student_scores.shape != teacher_scores.shape:
            raise ValueError(
                f"student and teacher scores must both be (B, K), got {tuple(student_scores.shape)} "
                f"and {tuple(teacher_scores.shape)}"
            )
        student = student_scores.float()
        teacher = teacher_scores.detach().float() / self.teacher_temperature
        if mask is not None:
            if mask.shape != student.shape:
                raise ValueError(f"mask must be {tuple(student.shape)}, got {tuple(mask.shape)}")
            if not bool(mask.any(dim=1).all()):
                raise ValueError("every row needs at least one valid passage")
            student = student.masked_fill(~mask, float("-inf"))
            teacher = teacher.masked_fill(~mask, float("-inf"))
        log_student = torch.log_softmax(student, dim=1)
        log_teacher = torch.log_softmax(teacher, dim=1)
        p_teacher = log_teacher.exp()
        # Masked slots have p_t = 0 and log terms of -inf; where() keeps 0 * inf from becoming NaN.
        terms = torch.where(p_teacher > 0, p_teacher * (log_teacher - log_student), torch.zeros_like(p_teacher))
        return terms.sum(dim=1).mean()


def softmax_entropy(scores: np.ndarray) -> np.ndarray:
    """Entropy (nats) of ``softmax`` over the last axis of ``scores``, per row, in float64."""
    x = np.asarray(scores, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    log_p = x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
    return -(np.exp(log_p) * log_p).sum(axis=-1)


def entropy_matched_temperature(
    teacher_scores: np.ndarray, target_entropy: float, low: float = 1e-4, high: float = 1e4
) -> float:
    """The teacher temperature at which ``softmax(teacher_scores / t)`` has mean entropy ``target_entropy``.

    ART's ``teacher_temperature: auto`` sets ``target_entropy`` to the student's mean entropy over the same
    passages at step 0, so the teacher's distribution starts as confident as the student's and the KL teaches
    the order of the passages, not a flatter or sharper distribution (see :mod:`spart.training.art`). The mean
    entropy grows monotonically with ``t``, so this is a bisection on ``log t`` within ``[low, high]``; a target
    outside the range reachable there returns the nearest bound.

    :param teacher_scores: ``(n, K)`` teacher scores (e.g. mean question log-likelihoods), ``K >= 2``.
    :param target_entropy: the mean entropy to reach, in nats (between 0 and ``log K``).
    :returns: the temperature, a positive float.
    :raises ValueError: on scores that are not a non-empty finite ``(n, K >= 2)`` array.
    """
    scores = np.asarray(teacher_scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] < 2 or not np.isfinite(scores).all():
        raise ValueError(f"teacher scores must be a finite (n >= 1, K >= 2) array, got shape {scores.shape}")
    lo, hi = math.log(low), math.log(high)
    for _ in range(100):
        mid = (lo + hi) / 2
        if softmax_entropy(scores / math.exp(mid)).mean() < target_entropy:
            lo = mid
        else:
            hi = mid
    return math.exp((lo + hi) / 2)
