"""ONNX Runtime backends of the teacher: same scores as torch (fp32), close ranking (int8), cache and rules."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from spart import onnx_runtime
from spart.teacher import onnx_backend as tob
from spart.teacher.likelihood import QuestionLikelihoodScorer
from spart.teacher.loading import ModelSource

QUESTIONS = ["What is the capital of France?", "Who created Python?"]
needs_onnxruntime = pytest.mark.usefixtures("onnx_extra")
pytestmark = pytest.mark.usefixtures("spart_cache")


def scorer(location, backend, **kwargs) -> QuestionLikelihoodScorer:
    kwargs.setdefault("precision", "fp32")
    out = QuestionLikelihoodScorer(str(location), device="cpu", batch_size=3, backend=backend, **kwargs)
    out.warm_up()
    return out


def spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


@needs_onnxruntime
@pytest.mark.parametrize("which", ["tiny_causal_dir", "tiny_gpt2_dir"])
def test_onnx_fp32_gives_the_torch_scores(which, request, passages):
    location = request.getfixturevalue(which)  # Llama (rotary positions) and GPT-2 (absolute positions)
    reference, fast = scorer(location, "torch"), scorer(location, "onnx")
    assert (reference.resolved_backend, fast.resolved_backend) == ("torch", "onnx")
    many = [p for p in passages for _ in range(2)]  # several batches with different padding
    for question in QUESTIONS:
        np.testing.assert_allclose(fast.score(question, many), reference.score(question, many), atol=1e-4)
    grid = fast.score_topk(QUESTIONS, [passages, passages[::-1]])
    np.testing.assert_allclose(grid, reference.score_topk(QUESTIONS, [passages, passages[::-1]]), atol=1e-4)


@needs_onnxruntime
def test_onnx_int8_keeps_the_ranking(tiny_causal_dir, passages):
    reference, fast = scorer(tiny_causal_dir, "torch"), scorer(tiny_causal_dir, "onnx-int8")
    assert fast.resolved_precision == "int8"
    for question in QUESTIONS:
        want, got = reference.score(question, passages), fast.score(question, passages)
        assert np.abs(got - want).max() < 0.05
        assert spearman(got, want) >= 0.79  # 4 passages: at most one adjacent swap
    model = __import__("onnx").load(str(fast._onnx.path))
    assert any(node.op_type == "MatMulNBits" for node in model.graph.node)


@needs_onnxruntime
def test_export_is_cached_and_keyed_by_variant(tiny_causal_dir, passages, monkeypatch, spart_cache):
    first = scorer(tiny_causal_dir, "onnx")
    expected = first.score(QUESTIONS[0], passages)
    monkeypatch.setattr(tob, "export_traced", lambda *a, **k: pytest.fail("exported again"))
    again = scorer(tiny_causal_dir, "onnx")
    np.testing.assert_array_equal(again.score(QUESTIONS[0], passages), expected)
    folders = list((spart_cache / "teacher-onnx" / tob.EXPORT_FORMAT).iterdir())
    assert [f.name for f in folders] == [first._onnx.path.parent.name] and (folders[0] / "model.onnx").is_file()
    with pytest.raises(pytest.fail.Exception, match="exported again"):
        scorer(tiny_causal_dir, "onnx-int8")  # another variant is another export


@needs_onnxruntime
def test_fingerprint_names_the_backend(tiny_causal_dir):
    torch_fp32 = scorer(tiny_causal_dir, "torch")
    onnx_fp32 = scorer(tiny_causal_dir, "onnx")
    int8 = scorer(tiny_causal_dir, "onnx-int8")
    assert len({torch_fp32.fingerprint, onnx_fp32.fingerprint, int8.fingerprint}) == 3
    # torch keeps the key it always had: a score cache filled before the ONNX backends still serves it
    assert torch_fp32.fingerprint == scorer(tiny_causal_dir, "auto").fingerprint


@needs_onnxruntime
def test_a_wrong_graph_is_rejected(tiny_causal_dir, monkeypatch, spart_cache):
    monkeypatch.setattr(tob, "CHECK_ATOL", {"onnx": -1.0, "onnx-int8": -1.0})
    with pytest.raises(ValueError, match="differs from torch"):
        scorer(tiny_causal_dir, "onnx")
    assert not any((spart_cache / "teacher-onnx" / tob.EXPORT_FORMAT).iterdir())  # nothing half-written is left


def test_bad_backend_arguments(tiny_causal_dir, tiny_t5_dir):
    with pytest.raises(ValueError, match="backend must be one of"):
        QuestionLikelihoodScorer(str(tiny_causal_dir), backend="llama.cpp")
    with pytest.raises(ValueError, match="causal LMs only"):
        scorer(tiny_t5_dir, "onnx")
    with pytest.raises(ValueError, match="sets its own precision"):
        scorer(tiny_causal_dir, "onnx-int8", precision="bf16")


def test_missing_extra_names_it(tiny_causal_dir, monkeypatch):
    for module in ("onnxruntime", "onnx"):  # not installed, as far as imports can tell
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=r"pip install 'spart\[onnx\]'"):
        scorer(tiny_causal_dir, "onnx-int8")
    assert scorer(tiny_causal_dir, "auto").resolved_backend == "torch"


@pytest.mark.parametrize(
    ("gguf", "kind", "device", "precision", "native_bf16", "installed", "expected"),
    [
        (True, "causal", "cpu", "auto", False, True, "onnx"),
        (True, "causal", "cpu", "fp32", False, True, "onnx"),
        (True, "causal", "cpu", "fp32", True, True, "onnx"),
        (True, "causal", "cpu", "auto", True, True, "torch"),  # bf16 autocast where it is native
        (True, "causal", "cpu", "bf16", False, True, "torch"),
        (True, "causal", "cpu", "auto", False, False, "torch"),  # extra not installed
        (False, "causal", "cpu", "auto", False, True, "torch"),  # HF directories stay on transformers
        (True, "seq2seq", "cpu", "auto", False, True, "torch"),
        (True, "causal", "cuda", "auto", False, True, "torch"),
    ],
)
def test_auto_rule(monkeypatch, gguf, kind, device, precision, native_bf16, installed, expected):
    monkeypatch.setattr(onnx_runtime, "onnxruntime_available", lambda: installed)
    teacher = QuestionLikelihoodScorer("unused", precision=precision, device=device)
    teacher.model_kind = kind
    source = ModelSource("/models", "teacher.gguf" if gguf else None)
    assert teacher._resolve_backend(source, native_bf16) == expected
