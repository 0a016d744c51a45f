"""Optimiser and learning-rate schedule shared by the trainers: AdamW with linear warm-up then linear decay.

This is DPR's and SPIDER's recipe (``get_linear_schedule_with_warmup``): the rate rises linearly from 0 to
``lr`` over ``warmup_steps`` and falls linearly to 0 at ``total_steps``. Biases and LayerNorm weights get no
weight decay (DPR's ``no_decay`` list).

Usage::

    optimizer = build_adamw(model, lr=2e-5, weight_decay=0.0)
    scheduler = linear_warmup_decay(optimizer, warmup_steps=10, total_steps=1000)
    ... optimizer.step(); scheduler.step()
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

NO_DECAY_MARKERS = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: decayed weights, and biases/norm weights without decay (empty groups dropped)."""
    decay, no_decay = [], []
    seen: set[int] = set()
    for name, param in model.named_parameters():
        if not param.requires_grad or id(param) in seen:  # a shared tower appears once
            continue
        seen.add(id(param))
        (no_decay if any(m in name for m in NO_DECAY_MARKERS) else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_adamw(
    model: nn.Module,
    lr: float,
    weight_decay: float = 0.0,
    betas: Iterable[float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> torch.optim.AdamW:
    """AdamW over ``model``'s trainable parameters (see :func:`parameter_groups`)."""
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")
    groups = parameter_groups(model, weight_decay)
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps)


def linear_warmup_decay_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the peak rate at ``step`` (0-based count of scheduler steps taken)."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1) if warmup_steps > 0 else 1.0
    remaining = total_steps - step
    span = max(1, total_steps - warmup_steps)
    return max(0.0, remaining / span)


def linear_warmup_decay(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` with linear warm-up to the peak, then linear decay to zero at ``total_steps``.

    Deviation from DPR: warm-up starts at ``lr / (warmup_steps + 1)`` rather than exactly 0, so the very
    first update is not wasted.
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}], got {warmup_steps}")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: linear_warmup_decay_factor(step, warmup_steps, total_steps)
    )
