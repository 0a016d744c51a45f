"""ARTDocumentEmbedder: embeds documents with ART's defaults (separate query and passage towers, [CLS] pooling)."""

from __future__ import annotations

from haystack import component

from spart.components.embedders._base import DocumentEmbedderBase
from spart.encoders.config import ART_DEFAULTS


@component
class ARTDocumentEmbedder(DocumentEmbedderBase):
    """Embeds documents (``title [SEP] content``) with the passage tower of an ART dual encoder.

    ART (Sachan et al., 2022) has separate question and passage towers, [CLS] pooling, dot product; a
    single model directory gives two towers that start as copies of it.

    ``model=None`` loads the packaged all-MiniLM-L6-v2 (resolved at ``warm_up``): no trained ART model
    ships with spart yet, so until one is passed this is a general-purpose sentence-transformers encoder
    (its own mean pooling and normalisation apply, not ART's [CLS] pooling).

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
    :param batch_size: passages per forward pass (batches are length-sorted, so padding stays small).
    :param progress_bar: show a tqdm progress bar while embedding.
    :param title_field: the ``Document.meta`` field prepended to the content as the passage title
        (``title [SEP] content``); ``None`` embeds the content alone.
    :param backend: ``"auto"`` (default: torch where bf16 is native or on a GPU, else the faster of torch fp32
        and ONNX Runtime on this machine, measured once and cached), ``"torch"``, or ``"onnx"`` (ONNX Runtime,
        fp32 on the CPU; needs ``pip install 'spart[onnx]'``). The towers are exported to ONNX once per model
        under ``$SPART_CACHE/onnx``.

    Usage::

        from haystack import Document
        from spart.components.embedders import ARTDocumentEmbedder

        embedder = ARTDocumentEmbedder(model="path/to/model", batch_size=64)
        embedder.warm_up()
        docs = [Document(content="Hamlet is a tragedy by Shakespeare.", meta={"title": "Hamlet"})]
        embedded = embedder.run(docs)["documents"]  # new Documents with .embedding set
    """

    method_defaults = ART_DEFAULTS
