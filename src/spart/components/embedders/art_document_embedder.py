"""ARTDocumentEmbedder: embeds documents with ART's preset (separate query and passage towers, [CLS] pooling)."""

from __future__ import annotations

from haystack import component

from spart.components.embedders._base import DocumentEmbedderBase
from spart.encoders.config import ART_DEFAULTS


@component
class ARTDocumentEmbedder(DocumentEmbedderBase):
    """Embeds documents (``title [SEP] content``) with the passage tower of an ART dual encoder.

    ART (Sachan et al., 2022): separate question and passage towers, [CLS] pooling, dot product; a single
    model directory gives two towers that start as copies of it.

    Init parameters: see :class:`~spart.components.embedders._base.DocumentEmbedderBase`.

    Usage::

        from haystack import Document
        from spart.components.embedders import ARTDocumentEmbedder

        embedder = ARTDocumentEmbedder(model="path/to/model", batch_size=64)
        embedder.warm_up()
        docs = [Document(content="Hamlet is a tragedy by Shakespeare.", meta={"title": "Hamlet"})]
        embedded = embedder.run(docs)["documents"]  # new Documents with .embedding set
    """

    method_defaults = ART_DEFAULTS
