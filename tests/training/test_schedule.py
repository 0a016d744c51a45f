"""AdamW groups and the linear warm-up / decay schedule."""

from __future__ import annotations

import pytest
from torch import nn

from spart.training.schedule import build_adamw, linear_warmup_decay, parameter_groups


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = nn.Linear(4, 4)
        self.LayerNorm = nn.LayerNorm(4)


def test_no_decay_for_bias_and_layernorm():
    groups = parameter_groups(Tiny(), weight_decay=0.1)
    decayed, plain = groups
    assert decayed["weight_decay"] == 0.1 and len(decayed["params"]) == 1  # dense.weight only
    assert plain["weight_decay"] == 0.0 and len(plain["params"]) == 3


def test_shared_parameters_appear_once():
    model = nn.Module()
    model.a = nn.Linear(2, 2)
    model.b = model.a
    assert sum(len(g["params"]) for g in parameter_groups(model, 0.0)) == 2


def test_warmup_then_linear_decay_to_zero():
    opt = build_adamw(Tiny(), lr=1.0)
    sched = linear_warmup_decay(opt, warmup_steps=4, total_steps=10)
    rates = []
    for _ in range(10):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    rates.append(opt.param_groups[0]["lr"])
    assert rates[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert rates[4:] == pytest.approx([1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6, 0.0])


def test_scheduler_state_round_trip():
    opt = build_adamw(Tiny(), lr=1.0)
    sched = linear_warmup_decay(opt, 2, 10)
    for _ in range(3):
        opt.step()
        sched.step()
    opt2 = build_adamw(Tiny(), lr=1.0)
    sched2 = linear_warmup_decay(opt2, 2, 10)
    sched2.load_state_dict(sched.state_dict())
    opt2.load_state_dict(opt.state_dict())
    assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])


def test_bad_arguments():
    with pytest.raises(ValueError):
        build_adamw(Tiny(), lr=0)
    opt = build_adamw(Tiny(), lr=1.0)
    with pytest.raises(ValueError):
        linear_warmup_decay(opt, 11, 10)
    with pytest.raises(ValueError):
        linear_warmup_decay(opt, 0, 0)
    frozen = Tiny().requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable"):
        build_adamw(frozen, lr=1.0)
