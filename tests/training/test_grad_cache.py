"""GradCache gives the full-batch gradient, also with dropout (RNG replay) and with a shared tower."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spart.training.grad_cache import RandomState, grad_cache_step, split_inputs
from spart.training.losses import InBatchContrastiveLoss


def make_model(dropout: float):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 24), nn.Dropout(dropout), nn.ReLU(), nn.Linear(24, 6))


def batch(n=8):
    g = torch.Generator().manual_seed(3)
    return torch.randn(n, 12, generator=g), torch.randn(2 * n, 12, generator=g)


def grads(model):
    return [p.grad.clone() for p in model.parameters()]


def chunked_reference(model, queries, passages, chunk):
    """Plain autograd, encoding chunk by chunk in GradCache's first-pass order (same dropout draws)."""
    q = torch.cat([model(c) for c in queries.split(chunk)])
    p = torch.cat([model(c) for c in passages.split(chunk)])
    loss = InBatchContrastiveLoss()(q, p, torch.arange(len(q)))
    loss.backward()
    return loss.detach()


def run_cached(model, queries, passages, chunk):
    return grad_cache_step(
        [(model, queries.split(chunk)), (model, passages.split(chunk))],
        lambda q, p: InBatchContrastiveLoss()(q, p, torch.arange(len(q))),
    )


@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_identical_to_full_batch_without_dropout(chunk):
    queries, passages = batch()
    model = make_model(0.0)
    full = InBatchContrastiveLoss()(model(queries), model(passages), torch.arange(8))
    full.backward()
    expected = grads(model)
    model.zero_grad()
    loss = run_cached(model, queries, passages, chunk)
    assert torch.allclose(loss, full.detach(), atol=1e-6)
    for g, e in zip(grads(model), expected):
        assert torch.allclose(g, e, atol=1e-6)


def test_dropout_masks_are_replayed():
    queries, passages = batch()
    model = make_model(0.5)
    torch.manual_seed(11)
    ref_loss = chunked_reference(model, queries, passages, 3)
    expected = grads(model)
    model.zero_grad()
    torch.manual_seed(11)
    loss = run_cached(model, queries, passages, 3)
    assert torch.allclose(loss, ref_loss, atol=1e-6)
    for g, e in zip(grads(model), expected):
        assert torch.allclose(g, e, atol=1e-6)


def test_without_replay_dropout_gradient_would_differ(monkeypatch):
    """Guard: the replay matters (the test above could not pass by accident)."""
    queries, passages = batch()
    model = make_model(0.5)
    torch.manual_seed(11)
    chunked_reference(model, queries, passages, 3)
    expected = grads(model)
    model.zero_grad()
    monkeypatch.setattr(RandomState, "__enter__", lambda self: self)
    monkeypatch.setattr(RandomState, "__exit__", lambda self, *exc: None)
    torch.manual_seed(11)
    run_cached(model, queries, passages, 3)
    assert any(not torch.allclose(g, e, atol=1e-6) for g, e in zip(grads(model), expected))


def test_random_state_restores_outer_stream():
    torch.manual_seed(5)
    state = RandomState()
    a = torch.rand(3)
    after_a = torch.get_rng_state()
    with state:
        b = torch.rand(3)
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), after_a)


def test_split_inputs():
    inputs = {"input_ids": torch.arange(10).view(5, 2), "attention_mask": torch.ones(5, 2)}
    chunks = split_inputs(inputs, 2)
    assert [len(c["input_ids"]) for c in chunks] == [2, 2, 1]
    assert torch.equal(torch.cat([c["input_ids"] for c in chunks]), inputs["input_ids"])
    with pytest.raises(ValueError):
        split_inputs(inputs, 0)
    with pytest.raises(ValueError, match="no chunks"):
        grad_cache_step([(lambda x: x, [])], lambda x: x.sum())
