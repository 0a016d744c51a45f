"""ONNX Runtime scoring of causal teachers on the CPU: the whole score in one graph, optionally int8.

The exported graph takes a left-padded batch (``input_ids``, ``attention_mask``, ``position_ids``) plus the
question tokens (``labels``, ``target_mask``) and returns each row's mean log-probability of its question, the
same quantity as :meth:`QuestionLikelihoodScorer._forward_left` (same layout): the LM head runs only at the question
positions and the log-softmax in fp32, inside the graph.

Variants (the scorer's ``backend``):

- ``"onnx"``: fp32, the same scores as torch fp32 up to float rounding.
- ``"onnx-int8"`` (opt-in, approximate): every linear layer except the LM head as ONNX Runtime ``MatMulNBits``
  with 8-bit weights in blocks of 32 (asymmetric) and int8 activations per block (``accuracy_level=4``,
  llama.cpp's Q8 recipe). On SmolLM2-135M the per-question Spearman correlation to the fp32 scores was
  0.96-0.99 (pooled over all pairs 0.99+, the same top-1 passage for every question); see docs/teacher.md,
  which also lists what was rejected (8-bit weights with fp32 compute: Spearman 0.994+ but no faster than
  the fp32 graph; 4-bit weights: 0.92; torch's ``quantize_dynamic``: 0.35-0.55 and no faster).

A graph is exported once per teacher weights, configuration and variant into
``$SPART_CACHE/teacher-onnx/v1/<key>/`` (written in a staging directory and swapped in whole), and checked
against the torch scores on a padded batch before it is used.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from spart.atomic import replace_directory
from spart.onnx_runtime import (
    eager_attention,
    export_traced,
    onnx_session,
    quiet_export,
    require_onnxruntime,
)

logger = logging.getLogger(__name__)

ONNX_BACKENDS = ("onnx", "onnx-int8")
EXPORT_FORMAT = "v1"
INPUTS = ["input_ids", "attention_mask", "position_ids", "labels", "target_mask"]
# Largest |score difference| the check batch may show: float reordering for fp32; for int8 a sanity bound
# (a broken graph is off by whole nats), the ranking quality is what the benchmark measures.
CHECK_ATOL = {"onnx": 1e-3, "onnx-int8": 0.5}


def teacher_onnx_root() -> Path:
    """``$SPART_CACHE/teacher-onnx`` (``~/.cache/spart/teacher-onnx`` without ``$SPART_CACHE``)."""
    from spart.evaluation.cache import cache_root

    return cache_root() / "teacher-onnx"


def _scoring_module(model: Any):
    import torch
    from torch import nn

    class ScoringGraph(nn.Module):
        """Mean log p(question | prompt) per row of a left-padded batch; the question ends at the last column."""

        def __init__(self, lm: nn.Module) -> None:
            super().__init__()
            self.lm = lm

        def forward(self, input_ids, attention_mask, position_ids, labels, target_mask):
            width, t_max = input_ids.shape[1], labels.shape[1]
            causal = torch.ones(width, width, dtype=torch.bool, device=input_ids.device).tril()
            allowed = causal[None, None] & attention_mask[:, None, None, :].bool()
            bias = torch.zeros(allowed.shape, dtype=torch.float32).masked_fill(~allowed, torch.finfo(torch.float32).min)
            hidden = self.lm.base_model(input_ids=input_ids, attention_mask=bias, position_ids=position_ids)
            hidden = hidden.last_hidden_state[:, width - t_max - 1 : width - 1]  # position j predicts token j + 1
            logits = self.lm.get_output_embeddings()(hidden).float()
            gold = logits.gather(-1, labels.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)
            weight = target_mask.float()
            return (gold * weight).sum(-1) / weight.sum(-1)

    return ScoringGraph(model).eval()


def export_key(weights_fingerprint: str, config: str, variant: str) -> str:
    """The cache folder name of one export: teacher weights, configuration and variant."""
    digest = hashlib.sha256(f"{EXPORT_FORMAT}|{weights_fingerprint}|{config}|{variant}".encode())
    return digest.hexdigest()[:24]


def _quantize_int8(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    model = onnx.load(str(source))
    # The LM head stays fp32: it is a small share of the work (question positions only) and sets the scores.
    head = [node.name for node in model.graph.node if node.op_type == "MatMul" and "lm_head" in node.name]
    with quiet_export():
        quantizer = MatMulNBitsQuantizer(
            model, bits=8, block_size=32, is_symmetric=False, accuracy_level=4, nodes_to_exclude=head
        )
        quantizer.process()
        quantizer.model.save_model_to_file(str(target), use_external_data_format=False)


class OnnxTeacher:
    """An exported scoring graph: ``score(batch)`` returns the mean log-probability per row (float64)."""

    def __init__(self, path: Path, variant: str) -> None:
        self.path = path
        self.variant = variant
        self.session = onnx_session(path)

    def score(self, batch: dict[str, Any]) -> np.ndarray:
        """:param batch: the five :data:`INPUTS` as torch tensors or arrays (int64 ids/masks, bool target mask)."""
        feed = {
            name: np.asarray(batch[name].cpu().numpy() if hasattr(batch[name], "cpu") else batch[name])
            for name in INPUTS
        }
        feed["target_mask"] = feed["target_mask"].astype(bool)
        return self.session.run(None, feed)[0].astype(np.float64)


def load_onnx_teacher(
    model: Any, variant: str, key: str, check_batch: dict[str, Any], root: Path | None = None
) -> OnnxTeacher:
    """The scoring graph of ``model`` (exported and checked on first use, then reused from the cache).

    :param model: the causal LM (fp32, CPU).
    :param variant: ``"onnx"`` or ``"onnx-int8"``.
    :param key: :func:`export_key` of the teacher.
    :param check_batch: a padded batch (the five :data:`INPUTS` as torch tensors) to compare with torch on.
    :param root: the export cache (default ``$SPART_CACHE/teacher-onnx``).
    """
    import torch

    if variant not in ONNX_BACKENDS:
        raise ValueError(f"variant must be one of {ONNX_BACKENDS}, got {variant!r}")
    require_onnxruntime()
    folder = (root or teacher_onnx_root()) / EXPORT_FORMAT / key
    path = folder / "model.onnx"
    if path.is_file():
        return OnnxTeacher(path, variant)
    graph = _scoring_module(model)
    args = tuple(check_batch[name] for name in INPUTS)
    with torch.inference_mode():
        expected = graph(*args).double().numpy()
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=folder.parent))
    try:
        raw = staging / ("model.onnx" if variant == "onnx" else "fp32.onnx")
        dims = {
            "input_ids": {0: "batch", 1: "tokens"},
            "attention_mask": {0: "batch", 1: "tokens"},
            "position_ids": {0: "batch", 1: "tokens"},
            "labels": {0: "batch", 1: "targets"},
            "target_mask": {0: "batch", 1: "targets"},
            "scores": {0: "batch"},
        }
        with eager_attention(model):
            export_traced(graph, args, raw, INPUTS, ["scores"], dims)
        if variant == "onnx-int8":
            _quantize_int8(raw, staging / "model.onnx")
            for leftover in staging.iterdir():
                if leftover.name != "model.onnx":
                    leftover.unlink()
        got = OnnxTeacher(staging / "model.onnx", variant).score(check_batch)
        error = float(np.abs(got - expected).max())
        if error > CHECK_ATOL[variant]:
            raise ValueError(f"the {variant} teacher graph differs from torch by {error:.3g} on the check batch")
        replace_directory(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("exported the teacher's %s scoring graph to %s (check batch max |diff| %.2g)", variant, folder, error)
    return OnnxTeacher(path, variant)
