"""spart's CPU dropout: the same Bernoulli dropout as torch's (rate, scaling, gradient, seeding, GradCache replay),
attention with dropout on the probabilities, and the switch of a whole model (eval outputs untouched, nothing
saved with the model)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from _trainer_helpers import make_tiny_bert
from torch import nn

from spart.training.dropout import (
    ATTENTION_NAME,
    KEEP_LEVELS,
    FastDropout,
    drop_levels,
    drop_mask,
    fast_dropout,
    fast_dropout_attention,
    use_fast_dropout,
)
from spart.training.grad_cache import grad_cache_step


def test_drop_levels_round_p_and_refuse_out_of_range():
    assert drop_levels(0.0) == 0
    assert drop_levels(0.1) == 6554
    assert drop_levels(0.5) == KEEP_LEVELS // 2
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match=str(bad)):
            drop_levels(bad)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keep_rate_is_one_minus_p(p):
    torch.manual_seed(0)
    n = 1_000_003  # not a multiple of four: the last draw is partly used
    mask = ~drop_mask((n,), p)
    assert mask.shape == (n,) and mask.dtype == torch.bool
    keep = 1 - drop_levels(p) / KEEP_LEVELS
    sigma = math.sqrt(keep * (1 - keep) / n)
    assert abs(mask.float().mean().item() - keep) < 5 * sigma
    # every 16-bit lane of a 64-bit draw is used: no lane is biased (a sign-free draw would keep lane 3 always)
    lanes = mask[: n - n % 4].view(-1, 4).float().mean(0)
    assert torch.all((lanes - keep).abs() < 5 * sigma * 2)


def test_masks_follow_the_seed_and_the_generator():
    torch.manual_seed(3)
    a = ~drop_mask((64, 33), 0.1)
    torch.manual_seed(3)
    b = ~drop_mask((64, 33), 0.1)
    c = ~drop_mask((64, 33), 0.1)
    assert torch.equal(a, b) and not torch.equal(b, c)
    torch.manual_seed(3)
    assert torch.equal(drop_mask((64, 33), 0.1), ~a)  # the same draws, complemented
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(drop_mask((10, 10), 0.3, generator=g1), drop_mask((10, 10), 0.3, generator=g2))


def test_fast_dropout_scales_kept_values_and_backpropagates_the_mask():
    torch.manual_seed(0)
    x = torch.randn(200, 50, requires_grad=True)
    y = fast_dropout(x, 0.25)
    kept = y != 0
    scale = KEEP_LEVELS / (KEEP_LEVELS - drop_levels(0.25))
    assert torch.allclose(y[kept], x[kept] * scale)
    assert 0.7 < kept.float().mean().item() < 0.8
    (y * 3).sum().backward()
    assert torch.allclose(x.grad, kept.float() * 3 * scale)


def test_fast_dropout_is_identity_out_of_training_or_at_zero():
    x = torch.randn(4, 5)
    assert fast_dropout(x, 0.5, training=False) is x
    assert fast_dropout(x, 0.0) is x


def test_fast_dropout_is_unbiased():
    torch.manual_seed(1)
    x = torch.full((2_000_000,), 2.0)
    assert abs(fast_dropout(x, 0.1).mean().item() - 2.0) < 0.01


def test_module_is_a_dropout_with_the_same_p():
    layer = FastDropout(0.2)
    assert isinstance(layer, nn.Dropout) and layer.p == 0.2
    x = torch.ones(1000)
    assert torch.equal(layer.eval()(x), x)
    assert (layer.train()(x) == 0).any()
    with pytest.raises(ValueError, match="inplace"):
        FastDropout(0.1, inplace=True)(x)


class _Attention(nn.Module):
    pass


def qkv(b=3, h=2, t=7, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, h, t, d, generator=g) for _ in range(3)]


def padding_mask(b=3, t=7):
    mask = torch.ones(b, 1, t, t, dtype=torch.bool)
    mask[0, :, :, 5:] = False  # the first sequence has 5 tokens
    return mask


def test_attention_without_dropout_is_sdpa():
    q, k, v = qkv()
    module = _Attention()
    expected = F.scaled_dot_product_attention(q, k, v, padding_mask()).transpose(1, 2)
    for training, p in ((False, 0.1), (True, 0.0)):
        module.train(training)
        out, _ = fast_dropout_attention(module, q, k, v, padding_mask(), dropout=p)
        assert torch.allclose(out, expected, atol=1e-6)


def test_attention_drops_probabilities_with_the_same_mask_stream():
    q, k, v = qkv()
    module = _Attention().train()
    mask = padding_mask()
    torch.manual_seed(5)
    out, probs = fast_dropout_attention(module, q, k, v, mask, dropout=0.2, scaling=0.3)
    torch.manual_seed(5)
    keep = ~drop_mask((3, 2, 7, 7), 0.2)
    reference = torch.softmax((q @ k.transpose(2, 3) * 0.3).masked_fill(~mask, -1e30), -1)
    reference = reference * keep * KEEP_LEVELS / (KEEP_LEVELS - drop_levels(0.2))
    assert torch.allclose(probs, reference, atol=1e-6)
    assert torch.allclose(out, (reference @ v).transpose(1, 2), atol=1e-5)
    assert torch.all(probs[0, :, :, 5:] == 0)  # padded keys get no attention


def test_attention_with_an_additive_mask_and_the_refusals():
    q, k, v = qkv()
    module = _Attention().train()
    additive = torch.zeros(3, 1, 7, 7).masked_fill(~padding_mask(), -1e9)
    torch.manual_seed(2)
    a, _ = fast_dropout_attention(module, q, k, v, additive, dropout=0.1)
    torch.manual_seed(2)
    b, _ = fast_dropout_attention(module, q, k, v, padding_mask(), dropout=0.1)
    assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="bidirectional"):
        fast_dropout_attention(module, q, k, v, None, dropout=0.1, is_causal=True)
    with pytest.raises(ValueError, match="key/value heads"):
        fast_dropout_attention(module, q, k[:, :1], v[:, :1], None, dropout=0.1)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, minilm_dir):
    return make_tiny_bert(tmp_path_factory.mktemp("fast-dropout"), minilm_dir, dropout=0.1)


def _inputs(path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    return tokenizer(["castle river", "a longer text about the castle by the river"], padding=True, return_tensors="pt")


def test_a_switched_model_is_unchanged_in_eval_and_saves_plainly(tiny_bert, tmp_path):
    from transformers import AutoModel

    model, reference = AutoModel.from_pretrained(tiny_bert), AutoModel.from_pretrained(tiny_bert)
    assert use_fast_dropout(model) == {"dropout_modules": 7, "attention": 1}  # 2 layers x 3 + embeddings
    assert model.config._attn_implementation == ATTENTION_NAME
    assert not any(type(m) is nn.Dropout for m in model.modules())
    inputs = _inputs(tiny_bert)
    model.eval(), reference.eval()
    assert torch.allclose(model(**inputs).last_hidden_state, reference(**inputs).last_hidden_state, atol=1e-6)

    model.train()
    torch.manual_seed(0)
    a = model(**inputs).last_hidden_state
    torch.manual_seed(0)
    b = model(**inputs).last_hidden_state
    assert torch.equal(a, b) and not torch.allclose(a, reference(**inputs).last_hidden_state, atol=1e-3)

    model.save_pretrained(tmp_path / "saved")
    assert ATTENTION_NAME not in (tmp_path / "saved" / "config.json").read_text()
    assert AutoModel.from_pretrained(tmp_path / "saved").config._attn_implementation == "sdpa"


def test_grad_cache_replays_the_fast_masks(tiny_bert):
    """GradCache's re-encode must draw the same masks as its first pass: its gradient equals plain autograd
    over the same chunks in the same order."""
    from transformers import AutoModel

    inputs = _inputs(tiny_bert)
    chunks = [{k: v[i : i + 1] for k, v in inputs.items()} for i in range(2)]

    def grads_of(cached: bool) -> list[torch.Tensor]:
        model = AutoModel.from_pretrained(tiny_bert)
        use_fast_dropout(model)
        model.train()

        def encode(chunk):
            return model(**chunk).last_hidden_state[:, 0]

        def loss_of(reps):
            return (reps @ reps.T).logsumexp(-1).sum()

        torch.manual_seed(9)
        if cached:
            grad_cache_step([(encode, chunks)], loss_of)
        else:
            loss_of(torch.cat([encode(c) for c in chunks])).backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    for a, b in zip(grads_of(True), grads_of(False)):
        assert torch.allclose(a, b, atol=1e-5)


def test_training_encoders_get_it_on_cpu_unless_disabled(tmp_path, tiny_bert):
    from _art_helpers import art_config

    from spart.training.models import art_encoder

    fast = art_encoder(art_config(tmp_path / "a", tiny_bert, shared=False), torch.device("cpu"))
    native = art_encoder(art_config(tmp_path / "b", tiny_bert, shared=False, fast_dropout=False), torch.device("cpu"))
    for model in (fast.query_model, fast.passage_model):
        assert any(isinstance(m, FastDropout) for m in model.modules())
    for model in (native.query_model, native.passage_model):
        assert not any(isinstance(m, FastDropout) for m in model.modules())
