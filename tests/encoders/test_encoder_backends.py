"""The choice of what runs DualEncoder.encode_*: argument checks and the measured, cached ``auto`` choice."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from _backend_helpers import TEXTS, TITLES, load, skip_without

from spart.encoders import ART_DEFAULTS, DualEncoder, backends

pytestmark = pytest.mark.usefixtures("spart_cache")


@pytest.fixture
def both_runtimes() -> None:
    for runtime in backends.RUNTIMES:
        skip_without(runtime)


@pytest.mark.parametrize("runtime", backends.RUNTIMES)
@pytest.mark.parametrize("overrides", [{"pooling": "cls"}, {"pooling": "mean", "normalize": True}])
def test_runtime_matches_torch(tiny_bert_dir, runtime, overrides):
    skip_without(runtime)
    reference, encoder = load(tiny_bert_dir, "torch", **overrides), load(tiny_bert_dir, runtime, **overrides)
    assert encoder.inference_backend == runtime and reference.inference_backend == "torch"
    for method in ("encode_queries", "encode_passages"):
        args = (TEXTS,) if method == "encode_queries" else (TEXTS, TITLES)
        expected = getattr(reference, method)(*args, batch_size=3)  # batches of 3 and 1 rows, several widths
        got = getattr(encoder, method)(*args, batch_size=3)
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("runtime", backends.RUNTIMES)
def test_separate_towers_stay_separate(tiny_bert_dir, runtime):
    skip_without(runtime)
    reference = load(tiny_bert_dir, "torch", defaults=ART_DEFAULTS)
    encoder = load(tiny_bert_dir, runtime, defaults=ART_DEFAULTS)
    with torch.no_grad():  # make the towers differ, so a mix-up would show
        encoder.passage_model.embeddings.word_embeddings.weight.mul_(0.5)
        reference.passage_model.embeddings.word_embeddings.weight.mul_(0.5)
    assert encoder.inference_backend == runtime
    np.testing.assert_allclose(encoder.encode_queries(TEXTS), reference.encode_queries(TEXTS), atol=1e-5)
    np.testing.assert_allclose(
        encoder.encode_passages(TEXTS, TITLES), reference.encode_passages(TEXTS, TITLES), atol=1e-5
    )


@pytest.mark.parametrize("runtime", backends.RUNTIMES)
def test_bad_backend_arguments(tiny_bert_dir, runtime):
    with pytest.raises(ValueError, match="backend must be one of"):
        load(tiny_bert_dir, "tensorrt")
    with pytest.raises(ValueError, match="runs in fp32"):
        DualEncoder.load(tiny_bert_dir, device="cpu", precision="bf16", backend=runtime)
    with pytest.raises(ValueError, match="runs on the CPU"):
        DualEncoder.load(tiny_bert_dir, device="cuda", backend=runtime)
    assert DualEncoder.load(tiny_bert_dir, device="cpu", backend=runtime).precision == "fp32"


def test_auto_without_any_runtime_is_torch(tiny_bert_dir, monkeypatch):
    for module in ("onnxruntime", "onnx", "openvino"):  # not installed, as far as imports can tell
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setattr(backends, "measured_choice", lambda *a: pytest.fail("nothing to measure"))
    auto = load(tiny_bert_dir, "auto").requires_grad_(False)
    assert auto.inference_backend == "torch"


def test_auto_keeps_torch_for_training_bf16_and_gpus(tiny_bert_dir, monkeypatch):
    monkeypatch.setattr(backends, "measured_choice", lambda *a: pytest.fail("no measurement expected"))
    trainable = load(tiny_bert_dir, "auto")
    assert trainable.inference_backend == "torch"  # parameters require grad: follow the live weights
    bf16 = DualEncoder.load(tiny_bert_dir, device="cpu", precision="bf16", backend="auto").requires_grad_(False)
    assert bf16.inference_backend == "torch"
    cuda = load(tiny_bert_dir, "auto").requires_grad_(False)
    cuda.device = torch.device("cuda")
    assert backends.resolve_backend(cuda) == "torch"


@pytest.mark.usefixtures("both_runtimes")
@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        ({"torch": 1.0, "onnx": 0.5, "openvino": 0.6}, "onnx"),
        ({"torch": 1.0, "onnx": 0.7, "openvino": 0.4}, "openvino"),
        ({"torch": 1.0, "onnx": 0.99, "openvino": 0.98}, "torch"),  # within MIN_GAIN: torch stays
    ],
)
def test_auto_measures_once_and_caches_the_choice(tiny_bert_dir, monkeypatch, spart_cache, seconds, expected):
    races = []

    def race(encoder, towers, repeats):
        assert set(towers) == {"onnx", "openvino"}
        races.append(1)
        return dict(seconds)

    monkeypatch.setattr(backends, "_race", race)
    encoder = load(tiny_bert_dir, "auto").requires_grad_(False)
    assert encoder.inference_backend == expected
    saved = json.loads((spart_cache / "encoder-backend" / backends.CHOICE_FILE).read_text())
    key = backends.machine_key(encoder, ["onnx", "openvino"])
    assert saved == {key: {"backend": expected, "seconds": seconds}}
    other = load(tiny_bert_dir, "auto", pooling="mean").requires_grad_(False)  # same architecture
    assert other.inference_backend == expected and len(races) == 1
    np.testing.assert_allclose(
        other.encode_queries(TEXTS), load(tiny_bert_dir, "torch", pooling="mean").encode_queries(TEXTS), atol=1e-5
    )


@pytest.mark.usefixtures("both_runtimes")
def test_auto_race_runs_every_backend(tiny_bert_dir):
    encoder = load(tiny_bert_dir, "auto").requires_grad_(False)
    towers = {runtime: backends.load_towers(encoder, runtime) for runtime in backends.RUNTIMES}
    seconds = backends._race(encoder, towers, repeats=1)
    assert set(seconds) == {"torch", "onnx", "openvino"} and all(0 < s < 60 for s in seconds.values())


@pytest.mark.usefixtures("both_runtimes")
def test_a_runtime_whose_export_fails_is_left_out(tiny_bert_dir, monkeypatch, caplog):
    real = backends.load_towers

    def load_towers(encoder, runtime, root=None):
        if runtime == "openvino":
            raise ValueError("this tower does not convert")
        return real(encoder, runtime, root)

    monkeypatch.setattr(backends, "load_towers", load_towers)
    monkeypatch.setattr(
        backends, "_race", lambda encoder, towers, repeats: {"torch": 1.0, **dict.fromkeys(towers, 0.5)}
    )
    encoder = load(tiny_bert_dir, "auto").requires_grad_(False)
    with caplog.at_level("WARNING", logger="spart.encoders.backends"):
        assert backends.resolve_backend(encoder) == "onnx"
    assert "openvino is left out" in caplog.text and "does not convert" in caplog.text
