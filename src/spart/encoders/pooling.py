"""Pooling of a tower's token states into one embedding per text (shared by torch and the runtime exports)."""

from __future__ import annotations

import torch
from torch import nn


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str, normalize: bool) -> torch.Tensor:
    """One embedding per row of ``hidden`` (batch x tokens x dim): the first token (``"cls"``) or the mean over
    ``attention_mask``'s tokens (``"mean"``), L2-normalised when ``normalize``."""
    if pooling == "cls":
        pooled = hidden[:, 0]
    else:
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    if normalize:
        pooled = nn.functional.normalize(pooled, dim=-1)
    return pooled
