"""What the ONNX Runtime backends of the encoder and the teacher share: the extra check, sessions, export helpers.

``onnxruntime`` and ``onnx`` come with the ``onnx`` extra (``pip install 'spart[onnx]'``); nothing here imports
them before it is needed, so ``import spart.onnx_runtime`` is cheap and works without the extra.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from spart._extras import require

logger = logging.getLogger(__name__)


def onnxruntime_available() -> bool:
    """Whether the ``onnx`` extra (onnxruntime and onnx) is installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def require_onnxruntime():
    """The ``onnxruntime`` module; :class:`spart._extras.MissingExtraError` naming the ``onnx`` extra when it
    (or ``onnx``, which the exports need) is missing."""
    require("onnx", "onnx")
    return require("onnxruntime", "onnx")


def onnx_session(path: str | os.PathLike, threads: int | None = None):
    """A CPU ``InferenceSession`` with every graph optimisation, sequential execution and ``threads`` intra-op
    threads (default: torch's thread count, so both backends use the same)."""
    import torch

    ort = require_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(Path(path)), options, providers=["CPUExecutionProvider"])


@contextlib.contextmanager
def eager_attention(model: Any) -> Iterator[None]:
    """Trace ``model`` with eager attention (restored afterwards): ONNX Runtime's optimisers recognise that
    graph (the SDPA one exports as opaque pieces), and it takes an explicit 4-D attention mask."""
    config = getattr(model, "config", None)
    before = getattr(config, "_attn_implementation", None)
    setter = getattr(model, "set_attn_implementation", None)
    changed = False
    if before not in (None, "eager") and setter is not None:
        try:
            setter("eager")
            changed = True
        except (ValueError, TypeError, AttributeError) as error:  # an architecture without eager attention
            logger.info("keeping %s attention for the ONNX export: %s", before, error)
    try:
        yield
    finally:
        if changed:
            setter(before)


@contextlib.contextmanager
def quiet_export() -> Iterator[None]:
    """No tracer warnings and no per-fusion INFO lines from ONNX Runtime's tools (they log under many names)."""
    previous = logging.root.manager.disable
    logging.disable(max(previous, logging.INFO))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def export_traced(
    module: Any,
    args: tuple,
    path: str | os.PathLike,
    inputs: list[str],
    outputs: list[str],
    dynamic_axes: dict[str, dict[int, str]],
) -> None:
    """``torch.onnx.export`` with the TorchScript tracer (opset 17), which both backends' graphs are built for."""
    import torch

    with torch.no_grad(), quiet_export():
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic_axes,
            opset_version=17,
            dynamo=False,
        )
