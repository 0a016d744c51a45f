"""InBatchContrastiveLoss: DPR's NLL over in-batch candidates."""

from __future__ import annotations

import math

import pytest
import torch

from spart.training.losses import InBatchContrastiveLoss


def test_matches_hand_computed_softmax():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])  # 2 positives, 2 negatives
    loss = InBatchContrastiveLoss()(q, p, torch.tensor([0, 1]))
    row0 = -(2 - math.log(math.exp(2) + 1 + math.exp(1) + 1))
    row1 = -(1 - math.log(1 + math.exp(1) + math.exp(1) + 1))
    assert loss.item() == pytest.approx((row0 + row1) / 2, rel=1e-6)


def test_temperature_sharpens():
    torch.manual_seed(0)
    q, p = torch.randn(4, 8), torch.randn(8, 8)
    target = torch.arange(4)
    plain = InBatchContrastiveLoss(1.0)(q, p, target)
    scaled = InBatchContrastiveLoss(0.5)(q, p, target)
    assert scaled.item() == pytest.approx(InBatchContrastiveLoss()(q * 2, p, target).item(), rel=1e-6)
    assert scaled.item() != pytest.approx(plain.item())


def test_candidate_order_does_not_matter():
    torch.manual_seed(0)
    q, p = torch.randn(3, 5), torch.randn(6, 5)
    perm = torch.randperm(6)
    inverse = torch.argsort(perm)
    target = torch.tensor([0, 1, 2])
    a = InBatchContrastiveLoss()(q, p, target)
    b = InBatchContrastiveLoss()(q, p[perm], inverse[target])
    assert torch.allclose(a, b, atol=1e-6)


def test_mask_removes_candidates():
    q = torch.tensor([[1.0, 0.0]])
    p = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    mask = torch.tensor([[True, False]])
    assert InBatchContrastiveLoss()(q, p, torch.tensor([0]), mask).item() == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="own positive"):
        InBatchContrastiveLoss()(q, p, torch.tensor([1]), mask)


def test_low_precision_inputs_give_float32_loss():
    q, p = torch.randn(2, 4).bfloat16(), torch.randn(4, 4).bfloat16()
    assert InBatchContrastiveLoss()(q, p, torch.tensor([0, 1])).dtype == torch.float32


@pytest.mark.parametrize(
    "q,p,t,match",
    [
        (torch.randn(2, 4), torch.randn(3, 5), torch.tensor([0, 1]), "expected"),
        (torch.randn(2, 4), torch.randn(3, 4), torch.tensor([0]), "positive_index"),
        (torch.randn(2, 4), torch.randn(3, 4), torch.tensor([0, 3]), "out of range"),
        (torch.randn(0, 4), torch.randn(3, 4), torch.zeros(0, dtype=torch.long), "empty"),
    ],
)
def test_bad_shapes(q, p, t, match):
    with pytest.raises(ValueError, match=match):
        InBatchContrastiveLoss()(q, p, t)


def test_bad_temperature():
    with pytest.raises(ValueError, match="temperature"):
        InBatchContrastiveLoss(0.0)
