"""8-bit OpenVINO towers: int8 weights in groups, 8-bit activations quantised per token and group at run time.

What ``backend="openvino-int8"`` runs (opt-in; ``"auto"`` never picks it). The fp32 IR of
:mod:`spart.encoders.openvino_backend` is rewritten so that every linear layer (``MatMul`` with a constant
``[out, in]`` weight) but the attention's value projections keeps its weight as int8 with one fp32 scale per group of
:data:`WEIGHT_GROUP` input channels (symmetric: ``w ~ scale * q``, ``q`` in [-127, 127]), written as the
decompression pattern OpenVINO's CPU plugin recognises (``Constant(i8) -> Convert -> Multiply(scale) -> Reshape``).
Compiled with ``DYNAMIC_QUANTIZATION_GROUP_SIZE`` = :data:`ACTIVATION_GROUP`, the plugin then quantises each
activation row to 8 bits per group of that many channels at run time and runs those products in integer
arithmetic.

Why this recipe, measured on MiniLM (1,000 wiki passages, cosine to fp32; docs/benchmarks.md has the tables):
ONNX Runtime's dynamic quantisation scales each activation *tensor* with one number, and MiniLM's FFN activations
have outliers that such a scale cannot hold (minimum cosine 0.908 with every layer in int8). A scale per token and
group of channels holds them: every linear layer at 64/64 kept a minimum cosine of 0.99901, just at the bound.
The value projections are the sensitive ones: keeping them alone in fp32 gives 0.99954 (keeping query and key
instead: 0.99906; all three: 0.99965, and slower), for a sixth of the products. Softmax, LayerNorm, GELU and the
attention products stay fp32.

The tower is checked on :data:`CHECK_SENTENCES` before it is kept: cosine to the torch fp32 embeddings of at least
:data:`MIN_COSINE` for every sentence (the issue's bound for quantising an encoder), else ``ValueError``. The same
check runs each time a cached tower is compiled, because what the plugin runs depends on the CPU: with oneDNN capped
at AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2``, no VNNI), OpenVINO 2026.4 returned an empty batch for these towers instead of
embeddings; such a CPU gets an error that names ``backend="openvino"`` rather than wrong vectors.

Example::

    from spart.encoders import DualEncoder
    from spart.encoders.loading import packaged_minilm_path

    encoder = DualEncoder.load(packaged_minilm_path(), device="cpu", backend="openvino-int8")
    vectors = encoder.encode_passages(["Paris is the capital of France."], ["Paris"])  # float32, unit length
"""

from __future__ import annotations

from typing import Any

import numpy as np

WEIGHT_GROUP = 64  # input channels per weight scale
ACTIVATION_GROUP = 64  # channels per run-time activation scale (per token)
# the cached IR's folder suffix: a new recipe, a new folder
VARIANT = f"int8-w{WEIGHT_GROUP}a{ACTIVATION_GROUP}-fp32v"
MIN_COSINE = 0.999

# Plain sentences of the kind an encoder sees, for the accuracy check at export (random token ids, which the fp32
# export is checked on, are not what int8 has to get right).
CHECK_SENTENCES = (
    "The Eiffel Tower was completed in 1889 as the entrance arch to the World's Fair.",
    "How do I read a file line by line in Python without loading all of it into memory?",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "A decorator is a function that takes another function and extends its behaviour.",
    "Who wrote the novel Pride and Prejudice, and in which year was it published?",
    "The mitochondrion is the organelle that produces most of the cell's supply of ATP.",
    "Use a context manager so the file is closed even when an exception is raised.",
    "Mount Kilimanjaro is a dormant volcano in Tanzania and the highest peak in Africa.",
)


def quantise_weight(weight: np.ndarray, group: int = WEIGHT_GROUP) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 quantisation of a ``[out, in]`` weight with one scale per ``group`` input channels.

    :param weight: fp32 ``[out, in]`` matrix; ``in`` must be a multiple of ``group``.
    :param group: input channels per scale.
    :returns: ``(q, scale)``: int8 ``[out, in / group, group]`` and fp32 ``[out, in / group, 1]``, with
        ``q * scale`` the dequantised weight (an all-zero group gets scale 1 and stays zero).
    :raises ValueError: if the shape does not split into groups.
    """
    weight = np.asarray(weight, dtype=np.float32)
    if weight.ndim != 2 or weight.shape[1] % group:
        raise ValueError(f"a weight of shape {weight.shape} does not split into groups of {group} input channels")
    rows, cols = weight.shape
    grouped = weight.reshape(rows, cols // group, group)
    scale = np.abs(grouped).max(axis=2, keepdims=True) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(grouped / scale), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


QUERY, KEY, VALUE = 0, 1, 2  # the inputs of ScaledDotProductAttention


def attention_inputs(model: Any, inputs: tuple[int, ...] = (VALUE,), depth: int = 6) -> set[str]:
    """Friendly names of the ``MatMul`` nodes that feed the given inputs (:data:`QUERY`, :data:`KEY`,
    :data:`VALUE`) of every ``ScaledDotProductAttention`` (found by walking back through at most ``depth``
    reshapes, transposes, bias adds... from each input)."""
    found: set[str] = set()
    for node in model.get_ops():
        if node.get_type_name() != "ScaledDotProductAttention":
            continue
        frontier = [node.input_value(i).get_node() for i in inputs]
        for _ in range(depth):
            following = []
            for source in frontier:
                if source.get_type_name() == "MatMul":
                    found.add(source.get_friendly_name())
                elif source.get_type_name() not in ("Constant", "Parameter"):
                    following += [source.input_value(i).get_node() for i in range(source.get_input_size())]
            frontier = following
    return found


def compress_weights(model: Any, group: int = WEIGHT_GROUP, *, keep: tuple[int, ...] = (VALUE,)) -> int:
    """Rewrite ``model`` (an ``openvino.Model``, in place) so its linear layers hold int8 grouped weights.

    A linear layer is a ``MatMul`` whose second input is an fp32 ``Constant`` of rank 2 with ``transpose_b`` (how
    the PyTorch frontend converts ``nn.Linear``); other MatMuls (attention products, weights of other layouts)
    are left in fp32, and so are the projections that feed the attention inputs in ``keep``.

    :param model: the fp32 model.
    :param group: input channels per weight scale; a layer whose input channels do not split into it gets one
        scale per output channel.
    :param keep: attention inputs (:data:`QUERY`, :data:`KEY`, :data:`VALUE`) whose projections stay fp32
        (:func:`attention_inputs`); ``()`` rewrites every linear layer.
    :returns: the number of layers rewritten.
    """
    import openvino as ov
    import openvino.opset13 as ops

    kept = attention_inputs(model, keep) if keep else set()
    rewritten = 0
    for node in model.get_ops():
        if node.get_type_name() != "MatMul" or not node.get_attributes().get("transpose_b"):
            continue
        if node.get_friendly_name() in kept:
            continue
        source = node.input_value(1).get_node()
        if source.get_type_name() != "Constant" or source.get_element_type() != ov.Type.f32:
            continue
        weight = source.get_data()
        if weight.ndim != 2:
            continue
        q, scale = quantise_weight(weight, group if weight.shape[1] % group == 0 else weight.shape[1])
        decompressed = ops.multiply(ops.convert(ops.constant(q, dtype=ov.Type.i8), ov.Type.f32), ops.constant(scale))
        shape = ops.constant(np.asarray(weight.shape, dtype=np.int64))
        node.input(1).replace_source_output(ops.reshape(decompressed, shape, special_zero=False).output(0))
        rewritten += 1
    model.validate_nodes_and_infer_types()
    return rewritten


def min_cosine(got: np.ndarray, expected: np.ndarray) -> float:
    """The smallest row-wise cosine between two ``[n, d]`` embedding matrices.

    :raises ValueError: naming both shapes when they differ (a runtime that returns no rows must not pass).
    """
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape or got.ndim != 2 or not len(got):
        raise ValueError(f"embeddings of shape {tuple(got.shape)} where {tuple(expected.shape)} was expected")
    norms = np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1)
    return float(((got * expected).sum(axis=1) / np.maximum(norms, 1e-12)).min())
