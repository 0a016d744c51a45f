"""Dropout on CPU at the cost of its arithmetic, not of its random numbers.

Profiling an ART step on two CPU cores (MiniLM, 16 questions x 40 passages of 128 tokens, GradCache chunks of 64)
showed most of the student's time in dropout, not in its matrix products: PyTorch's CPU ``bernoulli_`` draws one
32-bit Mersenne-Twister number per element (about 0.1 G elements/s on two cores), and
``scaled_dot_product_attention`` with ``dropout_p > 0`` has no fused CPU kernel, so it falls back to a path about
17x slower per call than the same attention without dropout (``benchmarks/bench_train_dropout.py``). This module
keeps dropout's semantics and removes that cost:

- :func:`drop_mask` draws the Bernoulli mask from 16-bit uniforms, four per 64-bit draw of the same generator
  (``torch.int64`` ``random_`` over its full range, viewed as ``int16``): a quarter of the draws and no float
  conversion. ``p`` is rounded to a multiple of 1/65536 (0.1 becomes 0.100006); the kept values are scaled by the
  inverse of the rounded keep rate, so the output is unbiased for the rounded ``p``.
- :class:`FastDropout` is a drop-in :class:`torch.nn.Dropout` (same ``p``, identity in eval mode) that uses it
  and saves only the boolean mask for the backward pass.
- :func:`fast_dropout_attention` is a transformers attention function: in eval mode, or with no dropout, it is
  transformers' SDPA attention unchanged; in training it computes softmax attention itself and applies
  :func:`fast_dropout` to the probabilities, as BERT's eager attention does with ``torch.nn.functional.dropout``.
- :func:`use_fast_dropout` switches a model to both.

The random stream is the default CPU generator's (or ``generator``), so runs stay seeded, checkpoints capture it
and GradCache's replay of a chunk redraws the same masks. What differs from ``torch.nn.Dropout``: the masks
themselves (another draw of the same distribution, so runs are not bit-identical to ones made with native
dropout) and the rounding of ``p``. On CUDA, native dropout is fast and this is not used.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

KEEP_LEVELS = 1 << 16
"""Keep-mask resolution: ``p`` is rounded to a multiple of ``1 / KEEP_LEVELS``."""

ATTENTION_NAME = "spart_fast_dropout"
"""The name :func:`fast_dropout_attention` is registered under in transformers' attention interface."""


def drop_levels(p: float) -> int:
    """How many of the :data:`KEEP_LEVELS` 16-bit values drop an element: ``round(p * KEEP_LEVELS)``.

    :param p: the drop probability, in ``[0, 1)``.
    :returns: an integer in ``[0, KEEP_LEVELS)``.
    :raises ValueError: when ``p`` is outside ``[0, 1)``.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    return min(round(p * KEEP_LEVELS), KEEP_LEVELS - 1)


def drop_mask(
    shape: torch.Size | tuple[int, ...], p: float, device: torch.device | str = "cpu", generator=None
) -> torch.Tensor:
    """A boolean mask of ``shape``, each element ``True`` (dropped) independently with probability ``p``
    (rounded as :func:`drop_levels` says).

    :param shape: the mask's shape.
    :param p: drop probability.
    :param device: where to draw it.
    :param generator: a :class:`torch.Generator`; default the device's default generator.
    :returns: a ``torch.bool`` tensor of ``shape``.
    """
    n = 1
    for size in shape:
        n *= int(size)
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device)
    words.random_(-(1 << 63), None, generator=generator)  # the full 64-bit range (``random_()`` leaves the sign 0)
    uniform16 = words.view(torch.int16)[:n]  # each 64-bit draw gives four independent 16-bit uniforms
    return (uniform16 < drop_levels(p) - KEEP_LEVELS // 2).view(shape)


class _MaskedScale(torch.autograd.Function):
    """``x * scale`` with the dropped elements zeroed; the backward keeps only the boolean mask (as native
    dropout does). Multiply then fill in place: one pass fewer than ``x * mask * scale``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, drop: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(drop)
        ctx.scale = scale
        return x.mul(scale).masked_fill_(drop, 0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (drop,) = ctx.saved_tensors
        return grad.mul(ctx.scale).masked_fill_(drop, 0), None, None


def fast_dropout(x: torch.Tensor, p: float, training: bool = True, generator=None) -> torch.Tensor:
    """Inverted dropout of ``x`` with a :func:`drop_mask`; ``x`` itself when not training or ``p`` rounds to 0.

    :param x: the input.
    :param p: drop probability.
    :param training: apply dropout only when true, as ``torch.nn.functional.dropout``.
    :param generator: the random generator (default: the device's default one).
    :returns: a tensor like ``x``.
    """
    dropped = drop_levels(p)
    if not training or dropped == 0:
        return x
    drop = drop_mask(x.shape, p, x.device, generator)
    return _MaskedScale.apply(x, drop, KEEP_LEVELS / (KEEP_LEVELS - dropped))


class FastDropout(nn.Dropout):
    """:class:`torch.nn.Dropout` drawing its mask with :func:`drop_mask` (the same ``p`` attribute, so code that
    reads ``module.dropout.p`` is unaffected).

    Usage::

        layer = FastDropout(0.1)
        y = layer(torch.randn(8, 384))  # training mode: about 10% of the elements zeroed, the rest x 1/0.9
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inplace:
            raise ValueError("FastDropout does not support inplace=True")
        return fast_dropout(x, self.p, self.training)


def fast_dropout_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Softmax attention with :func:`fast_dropout` on the probabilities in training; transformers' SDPA otherwise.

    The signature is transformers' attention interface (queries ``(batch, heads, q_len, d)``, the SDPA-style mask
    that :func:`use_fast_dropout` registers: boolean, ``True`` where attention is allowed, or an additive float
    mask, or ``None``).

    :returns: the attention output ``(batch, q_len, heads, d)`` and the probabilities (``None`` from SDPA).
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if not module.training or drop_levels(dropout) == 0:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=scaling, **kwargs)
    if kwargs.get("is_causal") or getattr(module, "is_causal", False):
        raise ValueError("fast_dropout_attention handles bidirectional (encoder) attention only")
    if key.shape[1] != query.shape[1]:  # grouped-query attention: the encoders trained here have none
        raise ValueError("fast_dropout_attention needs as many key/value heads as query heads")
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(value.dtype)
    probs = fast_dropout(probs, dropout, training=True)
    out = torch.matmul(probs, value).transpose(1, 2).contiguous()
    return out, probs


def _register_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION_NAME, fast_dropout_attention)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)


def use_fast_dropout(model: nn.Module) -> dict[str, int]:
    """Switch ``model`` (a transformers model, in place) to :class:`FastDropout` and, where its attention goes
    through transformers' attention interface with SDPA, to :func:`fast_dropout_attention`.

    Eval-mode outputs are unchanged; nothing is saved with the model (a saved checkpoint loads with the default
    attention).

    :param model: the model to train.
    :returns: ``{"dropout_modules": n, "attention": 0 or 1}``, what was switched.
    """
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, FastDropout(child.p))
                swapped += 1
    attention = 0
    config = getattr(model, "config", None)
    if config is not None and getattr(config, "_attn_implementation", None) == "sdpa":
        _register_attention()
        model.set_attn_implementation(ATTENTION_NAME)
        attention = int(model.config._attn_implementation == ATTENTION_NAME)
    return {"dropout_modules": swapped, "attention": attention}
