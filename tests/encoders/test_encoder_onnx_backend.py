"""The ONNX Runtime backend of DualEncoder: export, cache, staleness, and a bad fused graph."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from _backend_helpers import TEXTS, load

from spart.encoders import ART_DEFAULTS
from spart.encoders import onnx_backend as ob

needs_onnxruntime = pytest.mark.usefixtures("onnx_extra")
pytestmark = pytest.mark.usefixtures("spart_cache")


@needs_onnxruntime
def test_separate_towers_export_two_files(tiny_bert_dir, spart_cache):
    encoder = load(tiny_bert_dir, "onnx", defaults=ART_DEFAULTS)
    assert encoder.inference_backend == "onnx"
    files = ob.tower_files(encoder)
    assert files["query"] != files["passage"] and all(p.is_file() for p in files.values())
    assert files["query"].parent == spart_cache / "onnx" / ob.EXPORT_FORMAT / encoder.fingerprint


@needs_onnxruntime
def test_second_load_reuses_the_export(tiny_bert_dir, monkeypatch):
    first = load(tiny_bert_dir, "onnx")
    expected = first.encode_passages(TEXTS)
    calls = []
    monkeypatch.setattr(ob, "export_tower", lambda *a, **k: calls.append(a))
    second = load(tiny_bert_dir, "onnx")
    np.testing.assert_array_equal(second.encode_passages(TEXTS), expected)
    assert calls == []


@needs_onnxruntime
def test_changed_weights_give_a_new_export(tiny_bert_dir):
    encoder = load(tiny_bert_dir, "onnx")
    before = encoder.encode_passages(TEXTS)
    old_files = ob.tower_files(encoder)
    with torch.no_grad():  # an in-place update, as an optimiser step makes
        encoder.query_model.encoder.layer[0].output.dense.weight[:3].add_(0.5)
    after = encoder.encode_passages(TEXTS)
    new_files = ob.tower_files(encoder)
    assert new_files["passage"] != old_files["passage"] and new_files["passage"].is_file()
    assert np.abs(after - before).max() > 1e-3  # the new weights are used...
    reference = load(tiny_bert_dir, "torch")
    reference.load_state_dict(encoder.state_dict())
    np.testing.assert_allclose(after, reference.encode_passages(TEXTS), atol=1e-5)  # ...and match torch


@needs_onnxruntime
def test_a_copy_of_an_onnx_encoder_works(tiny_bert_dir):
    import copy

    encoder = load(tiny_bert_dir, "onnx")
    expected = encoder.encode_queries(TEXTS)
    np.testing.assert_array_equal(copy.deepcopy(encoder).encode_queries(TEXTS), expected)


@needs_onnxruntime
def test_a_bad_fused_graph_falls_back_to_the_plain_export(tiny_bert_dir, monkeypatch):
    def broken_fuse(raw, out, config):
        import onnx

        model = onnx.load(str(raw))  # a "fused" graph whose output is twice the right one
        mul = onnx.helper.make_node("Mul", ["embedding_raw", "two"], ["embedding"])
        model.graph.node[-1].output[0] = "embedding_raw"
        model.graph.initializer.append(onnx.numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two"))
        model.graph.node.append(mul)
        onnx.save(model, str(out))
        return {"Broken": 1}

    monkeypatch.setattr(ob, "_fuse", broken_fuse)
    encoder = load(tiny_bert_dir, "onnx")
    np.testing.assert_allclose(
        encoder.encode_queries(TEXTS), load(tiny_bert_dir, "torch").encode_queries(TEXTS), atol=1e-5
    )


def test_missing_extra_names_it(tiny_bert_dir, monkeypatch):
    for module in ("onnxruntime", "onnx"):  # not installed, as far as imports can tell
        monkeypatch.setitem(sys.modules, module, None)
    encoder = load(tiny_bert_dir, "onnx")
    with pytest.raises(ImportError, match=r"pip install 'spart\[onnx\]'"):
        encoder.encode_queries(TEXTS)
