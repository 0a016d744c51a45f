"""SpiderTextEmbedder: embeds a query string with SPIDER's defaults (one shared tower, [CLS] pooling)."""

from __future__ import annotations

from haystack import component

from spart.components.embedders._base import TextEmbedderBase
from spart.encoders.config import SPIDER_DEFAULTS


@component
class SpiderTextEmbedder(TextEmbedderBase):
    """Embeds a query string with the query tower of a SPIDER dual encoder.

    SPIDER (Ram et al., 2022) uses one BERT tower for questions and passages, [CLS] pooling, dot product.

    ``model=None`` loads the packaged all-MiniLM-L6-v2 (resolved at ``warm_up``): no trained SPIDER model
    ships with spart yet, so until one is passed this is a general-purpose sentence-transformers encoder
    (its own mean pooling and normalisation apply, not SPIDER's [CLS] pooling).

    :param model: model directory or hub id: a spart/sentence-transformers directory, a DPR encoder directory
        or a plain Hugging Face BERT-family directory. ``None``: the packaged MiniLM (see above).
    :param passage_model: optional second directory for the passage tower (e.g. a DPR context encoder).
    :param device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda:0"``...
    :param precision: ``"auto"`` (bf16 where the hardware runs it natively), ``"fp32"`` or ``"bf16"``. In bf16 the
        (inference-only) weights are held in bf16 and the forward pass runs under bf16 autocast.
    :param query_max_length: token budget of a query (``None``: the model's or method's default, 64).
    :param passage_max_length: token budget of ``title [SEP] text`` (``None``: default, 240).
    :param pooling: ``"cls"`` or ``"mean"`` to override the model's pooling; ``None`` keeps it.
    :param normalize: ``True``/``False`` to override L2 normalisation; ``None`` keeps the model's setting.
    :param backend: ``"auto"`` (default: torch where bf16 is native or on a GPU, else the faster of torch fp32
        and ONNX Runtime on this machine, measured once and cached), ``"torch"``, or ``"onnx"`` (ONNX Runtime,
        fp32 on the CPU; needs ``pip install 'spart[onnx]'``). The towers are exported to ONNX once per model
        under ``$SPART_CACHE/onnx``.

    Usage::

        from spart.components.embedders import SpiderTextEmbedder

        embedder = SpiderTextEmbedder(model="path/to/model")
        embedder.warm_up()
        vector = embedder.run("who wrote hamlet?")["embedding"]  # list[float]
    """

    method_defaults = SPIDER_DEFAULTS
