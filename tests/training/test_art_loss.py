"""KLDistillationLoss against a hand computation: value, gradient, masking, and ART's KLDivLoss form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spart.training.losses.kl_distillation_loss import (
    KLDistillationLoss,
    entropy_matched_temperature,
    softmax_entropy,
)


def softmax(xs):
    top = max(xs)
    e = [math.exp(x - top) for x in xs]
    return [v / sum(e) for v in e]


def test_value_and_gradient_match_hand_computation():
    student = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
    teacher = [[-2.0, -1.0, -3.0], [-0.5, -0.5, -4.0]]
    # By hand: KL(t || s) = sum_k t_k (log t_k - log s_k), mean over the 2 rows; d/ds = (s - t) / B.
    expected, expected_grad = 0.0, []
    for s_row, t_row in zip(student, teacher):
        ps, pt = softmax(s_row), softmax(t_row)
        expected += sum(t * (math.log(t) - math.log(s)) for s, t in zip(ps, pt)) / 2
        expected_grad.append([(s - t) / 2 for s, t in zip(ps, pt)])

    s = torch.tensor(student, requires_grad=True)
    loss = KLDistillationLoss()(s, torch.tensor(teacher))
    loss.backward()
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert torch.allclose(s.grad, torch.tensor(expected_grad), atol=1e-7)


def test_teacher_temperature_divides_teacher_scores_only():
    s, t = torch.tensor([[0.3, -0.2, 1.0]]), torch.tensor([[-1.0, -2.0, -1.5]])
    assert KLDistillationLoss(teacher_temperature=0.5)(s, t).item() == pytest.approx(
        KLDistillationLoss()(s, t * 2).item()
    )


def test_equals_arts_kldivloss_and_is_zero_when_distributions_match():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    reference = torch.nn.KLDivLoss(reduction="batchmean", log_target=True)(
        torch.log_softmax(s, 1), torch.log_softmax(t, 1)
    )
    assert KLDistillationLoss()(s, t).item() == pytest.approx(reference.item(), rel=1e-6)
    assert KLDistillationLoss()(t + 3.0, t).item() == pytest.approx(0.0, abs=1e-6)  # shift invariant


def test_teacher_gets_no_gradient():
    s = torch.randn(2, 3, requires_grad=True)
    t = torch.randn(2, 3, requires_grad=True)
    KLDistillationLoss()(s, t).backward()
    assert t.grad is None and s.grad is not None


def test_masked_slots_are_ignored_without_nan():
    s = torch.tensor([[1.0, 2.0, 9.0], [0.0, 1.0, 2.0]], requires_grad=True)
    t = torch.tensor([[-1.0, -2.0, 5.0], [-1.0, -1.5, -2.0]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    loss = KLDistillationLoss()(s, t, mask)
    loss.backward()
    reduced = (KLDistillationLoss()(s[:1, :2], t[:1, :2]) + KLDistillationLoss()(s[1:], t[1:])) / 2
    assert loss.item() == pytest.approx(reduced.item(), rel=1e-6)
    assert torch.isfinite(s.grad).all() and s.grad[0, 2] == 0


@pytest.mark.parametrize(
    "student, teacher, mask",
    [
        (torch.zeros(2, 3), torch.zeros(2, 4), None),
        (torch.zeros(3), torch.zeros(3), None),
        (torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([[False, False]])),
    ],
)
def test_bad_input_is_a_clear_error(student, teacher, mask):
    with pytest.raises(ValueError):
        KLDistillationLoss()(student, teacher, mask)
    with pytest.raises(ValueError, match="teacher_temperature"):
        KLDistillationLoss(teacher_temperature=0)


def test_softmax_entropy_by_hand():
    rows = [[0.0, 0.0, 0.0, 0.0], [2.0, 0.0, -1.0, 5.0]]
    by_hand = [-sum(p * math.log(p) for p in softmax(row)) for row in rows]
    assert softmax_entropy(np.array(rows)) == pytest.approx(by_hand, rel=1e-12)
    assert softmax_entropy(np.array([[1000.0, 0.0]]))[0] == pytest.approx(0.0, abs=1e-12)  # no overflow


def test_entropy_matched_temperature_reaches_the_target():
    scores = np.random.default_rng(0).normal(size=(50, 40)) * 0.7
    for target in (0.5, 1.86, 3.0):
        t = entropy_matched_temperature(scores, target)
        assert softmax_entropy(scores / t).mean() == pytest.approx(target, abs=1e-9)
    # sharper target -> lower temperature; scaling the scores scales the temperature
    assert entropy_matched_temperature(scores, 1.0) < entropy_matched_temperature(scores, 2.0)
    assert entropy_matched_temperature(3 * scores, 1.5) == pytest.approx(3 * entropy_matched_temperature(scores, 1.5))


def test_entropy_matched_temperature_clamps_and_rejects_bad_input():
    ties = np.zeros((3, 4))  # always uniform: no temperature reaches a lower entropy
    assert entropy_matched_temperature(ties, 0.5) == pytest.approx(1e-4)
    assert entropy_matched_temperature(np.array([[0.0, 1.0]]), 10.0) == pytest.approx(1e4)  # above log K
    for bad in (np.zeros((0, 4)), np.zeros((2, 1)), np.zeros(4), np.array([[0.0, np.nan]])):
        with pytest.raises(ValueError, match="teacher scores"):
            entropy_matched_temperature(bad, 1.0)
