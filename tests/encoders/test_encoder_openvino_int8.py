"""The 8-bit OpenVINO backend: grouped weight quantisation, the rewritten graph, the cosine check, the cache."""

from __future__ import annotations

import numpy as np
import pytest
from _backend_helpers import TEXTS, TITLES, load

from spart.encoders import openvino_backend as vb
from spart.encoders import openvino_int8 as v8

needs_openvino = pytest.mark.usefixtures("openvino_extra")
pytestmark = pytest.mark.usefixtures("spart_cache")


def test_quantise_weight_rounds_each_group_to_its_own_scale():
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(6, 128)).astype(np.float32)
    weight[:, 64:] *= 100  # a second group 100x larger must not coarsen the first
    weight[5] = 0  # an all-zero row
    q, scale = v8.quantise_weight(weight, group=64)
    assert q.dtype == np.int8 and q.shape == (6, 2, 64) and scale.shape == (6, 2, 1)
    assert np.abs(q).max() == 127
    restored = (q * scale).reshape(6, 128)
    error = np.abs(restored - weight).reshape(6, 2, 64)
    assert (error <= scale / 2 + 1e-6).all()  # rounding to the nearest step
    assert error[:5, 0].max() < 0.02  # the small group keeps a fine step
    np.testing.assert_array_equal(restored[5], 0)
    assert (scale[5] == 1).all()


def test_quantise_weight_names_a_shape_that_does_not_split():
    with pytest.raises(ValueError, match="groups of 64"):
        v8.quantise_weight(np.ones((4, 96), dtype=np.float32), group=64)


def test_min_cosine_is_the_worst_row():
    a = np.array([[1.0, 0.0], [1.0, 1.0]])
    b = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert v8.min_cosine(a, b) == pytest.approx(1 / np.sqrt(2))


def test_min_cosine_refuses_missing_rows():
    with pytest.raises(ValueError, match=r"shape \(0, 2\) where \(2, 2\)"):
        v8.min_cosine(np.zeros((0, 2)), np.ones((2, 2)))


@needs_openvino
def test_compress_weights_rewrites_the_linear_layers_but_the_values(tiny_bert_dir):
    import openvino as ov
    from torch import nn

    encoder = load(tiny_bert_dir, "openvino")
    assert encoder.inference_backend == "openvino"
    path = str(vb.tower_dirs(encoder)["passage"] / vb.MODEL_FILE)
    names = [name for name, m in encoder.query_model.encoder.named_modules() if isinstance(m, nn.Linear)]
    values = [name for name in names if name.endswith(".value")]
    qkv = [name for name in names if name.rsplit(".", 1)[-1] in ("query", "key", "value")]
    assert len(names) == 12 and len(values) == 2  # 2 layers x (q, k, v, out, ffn in, ffn out)

    def module(node_name: str) -> str:  # "__module.tower.encoder.layer.0.attention.self.value/aten::linear/MatMul"
        return node_name.split("/")[0].split("encoder.", 1)[1]

    model = ov.Core().read_model(path)
    assert sorted(map(module, v8.attention_inputs(model))) == sorted(values)
    assert sorted(map(module, v8.attention_inputs(model, (v8.QUERY, v8.KEY, v8.VALUE)))) == sorted(qkv)
    assert v8.compress_weights(model) == len(names) - len(values)
    int8 = [op for op in model.get_ops() if op.get_type_name() == "Constant" and op.get_element_type() == ov.Type.i8]
    assert len(int8) == len(names) - len(values)
    assert v8.compress_weights(model) == 0  # nothing left in fp32 to rewrite
    assert v8.compress_weights(ov.Core().read_model(path), keep=()) == len(names)


@needs_openvino
def test_int8_backend_stays_within_the_cosine_bound(tiny_bert_dir, spart_cache):
    reference = load(tiny_bert_dir, "torch")
    encoder = load(tiny_bert_dir, "openvino-int8")
    assert encoder.inference_backend == "openvino-int8"
    for got, expected in (
        (encoder.encode_passages(TEXTS, TITLES), reference.encode_passages(TEXTS, TITLES)),
        (encoder.encode_queries(TEXTS), reference.encode_queries(TEXTS)),
    ):
        assert got.dtype == np.float32
        assert v8.min_cosine(got, expected) >= v8.MIN_COSINE
        assert np.abs(got - expected).max() > 1e-7  # it is not the fp32 graph
    folder = vb.tower_dirs(encoder, int8=True)["passage"]
    assert folder.name == f"shared-{v8.VARIANT}" and (folder / vb.MODEL_FILE).is_file()
    assert (vb.tower_dirs(encoder)["passage"] / vb.MODEL_FILE).is_file()  # converted from the fp32 IR
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging left


@needs_openvino
def test_second_load_reuses_the_int8_model(tiny_bert_dir, monkeypatch):
    expected = load(tiny_bert_dir, "openvino-int8").encode_passages(TEXTS)
    monkeypatch.setattr(vb, "export_int8_tower", lambda *a, **k: pytest.fail("quantised again"))
    np.testing.assert_array_equal(load(tiny_bert_dir, "openvino-int8").encode_passages(TEXTS), expected)


@needs_openvino
def test_a_tower_below_the_cosine_bound_is_rejected_and_not_kept(tiny_bert_dir, monkeypatch):
    monkeypatch.setattr(v8, "MIN_COSINE", 1.5)  # no embedding can reach it
    encoder = load(tiny_bert_dir, "openvino-int8")
    with pytest.raises(ValueError, match="keeps a cosine of only"):
        encoder.encode_queries(TEXTS)
    assert not vb.tower_dirs(encoder, int8=True)["query"].exists()


@needs_openvino
@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (lambda out: out[:0], r"returned embeddings of shape \(0, "),  # what OpenVINO 2026.4 did, oneDNN capped at AVX2
        (lambda out: out * np.nan, r"keeps a cosine of only nan"),
    ],
)
def test_a_cached_tower_that_breaks_on_this_cpu_is_refused_at_load(tiny_bert_dir, monkeypatch, broken, message):
    load(tiny_bert_dir, "openvino-int8").encode_queries(TEXTS)  # exported and checked
    compile_tower = vb.compile_tower

    def breaking(path, threads=None, *, activation_group=None):
        compiled = compile_tower(path, threads, activation_group=activation_group)
        return (lambda inputs: [broken(compiled(inputs)[0])]) if activation_group else compiled

    monkeypatch.setattr(vb, "compile_tower", breaking)
    encoder = load(tiny_bert_dir, "openvino-int8")
    with pytest.raises(ValueError, match=message + r'.*use backend="openvino"'):
        encoder.encode_queries(TEXTS)
    assert (vb.tower_dirs(encoder, int8=True)["query"] / vb.MODEL_FILE).is_file()  # the IR is kept for other CPUs
    assert load(tiny_bert_dir, "openvino").encode_queries(TEXTS).shape == (len(TEXTS), 32)


def test_int8_backend_is_cpu_and_fp32_only(tiny_bert_dir):
    from spart.encoders import DualEncoder

    with pytest.raises(ValueError, match="runs in fp32"):
        DualEncoder.load(tiny_bert_dir, device="cpu", precision="bf16", backend="openvino-int8")


def test_auto_never_picks_an_approximate_backend():
    from spart.encoders import backends

    assert "openvino-int8" in backends.BACKENDS
    assert not set(backends.QUANTISED) & set(backends.RUNTIMES)  # RUNTIMES are auto's candidates
