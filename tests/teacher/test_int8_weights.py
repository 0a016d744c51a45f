"""Int8WeightLinear and hold_linear_weights_in_int8: the int8 path for few rows, bf16 for many, close to bf16."""

from __future__ import annotations

import pytest
import torch

from spart.teacher.int8_weights import Int8WeightLinear, hold_linear_weights_in_int8


def _layer(bias: bool = True) -> torch.nn.Linear:
    torch.manual_seed(0)
    return torch.nn.Linear(64, 48, bias=bias)


def test_weight_is_quantised_per_output_channel_within_half_a_step():
    linear = _layer()
    layer = Int8WeightLinear(linear)
    assert layer.weight_int8.dtype == torch.int8 and layer.weight_int8.abs().max() == 127
    rebuilt = layer.weight_int8.float() * layer.scales.float()[:, None]
    step = layer.scales.float()[:, None]
    # the bf16 scale's own rounding adds at most 127 * 2^-8 of a step
    assert ((rebuilt - linear.weight.detach()).abs() <= step * (0.5 + 127 * 2**-8)).all()


@pytest.mark.parametrize("bias", [True, False])
def test_few_rows_take_the_int8_path_and_many_the_bf16_weight(monkeypatch, bias):
    linear = _layer(bias)
    layer = Int8WeightLinear(linear, max_rows=4)
    calls = []
    real = torch._weight_int8pack_mm
    monkeypatch.setattr(torch, "_weight_int8pack_mm", lambda *a: calls.append(a[0].shape) or real(*a))
    few = torch.randn(2, 2, 64, dtype=torch.bfloat16)  # 4 rows: int8
    many = torch.randn(1, 5, 64, dtype=torch.bfloat16)  # 5 rows: bf16
    out_few, out_many = layer(few), layer(many)
    assert calls == [torch.Size([4, 64])]
    assert out_few.shape == (2, 2, 48) and out_many.shape == (1, 5, 48) and out_few.dtype == torch.bfloat16
    exact = linear(many.float())
    assert torch.allclose(out_many.float(), exact, atol=0.05, rtol=0.02)
    # the int8 path: the same products as the bf16 weight up to the quantisation error
    reference = linear(few.float())
    error = (layer(few).float() - reference).abs().max() / reference.abs().max()
    assert error < 0.03


def test_widths_the_kernel_cannot_take_use_the_bf16_weight(monkeypatch):
    linear = torch.nn.Linear(50, 33)  # 50 wide: the kernel gave wrong products or crashed
    layer = Int8WeightLinear(linear)
    monkeypatch.setattr(torch, "_weight_int8pack_mm", lambda *a: pytest.fail("int8 path for a 50-wide layer"))
    x = torch.randn(1, 50, dtype=torch.bfloat16)
    assert torch.allclose(layer(x).float(), linear(x.float()), atol=0.05, rtol=0.02)


def test_fp32_inputs_use_the_bf16_weight(monkeypatch):
    layer = Int8WeightLinear(_layer())
    monkeypatch.setattr(torch, "_weight_int8pack_mm", lambda *a: pytest.fail("int8 path for an fp32 input"))
    assert layer(torch.randn(1, 64)).dtype == torch.bfloat16


@pytest.mark.parametrize("tied", [False, True])
def test_every_linear_of_an_lm_is_replaced_prompts_match_bf16_and_tokens_stay_close(tmp_path, minilm_dir, tied):
    import copy

    from _tiny_models import build_tiny_causal
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(build_tiny_causal(tmp_path / "m", minilm_dir))
    config.tie_word_embeddings = tied
    torch.manual_seed(0)
    bf16 = AutoModelForCausalLM.from_config(config).eval().requires_grad_(False).to(torch.bfloat16)
    held = copy.deepcopy(bf16)
    n_linear = sum(isinstance(m, torch.nn.Linear) for m in bf16.modules())
    assert hold_linear_weights_in_int8(held) == n_linear > 0
    assert not any(isinstance(m, torch.nn.Linear) for m in held.modules())
    assert held.get_input_embeddings().weight.dtype == torch.bfloat16  # not quantised
    if tied:  # the head's bf16 weight is the input embedding's tensor, not a copy
        assert held.get_output_embeddings().weight.data_ptr() == held.get_input_embeddings().weight.data_ptr()
    ids = torch.randint(5, 1000, (1, 9), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        # a prompt (9 rows per layer) runs on the bf16 weights: bf16's logits, bit for bit
        assert torch.equal(held(input_ids=ids).logits, bf16(input_ids=ids).logits)
        # one token (one row per layer) runs on the int8 copies: close to bf16's, not equal
        one, reference = held(input_ids=ids[:, :1]).logits[0, -1].float(), bf16(input_ids=ids[:, :1]).logits[0, -1]
    assert not torch.equal(one, reference.float())
    assert torch.corrcoef(torch.stack([one, reference.float()]))[0, 1] > 0.99
