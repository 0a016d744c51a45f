"""SpiderDocumentEmbedder: embeds documents with SPIDER's preset (one shared tower, [CLS] pooling)."""

from __future__ import annotations

from haystack import component

from spart.components.embedders._base import DocumentEmbedderBase
from spart.encoders.config import SPIDER_DEFAULTS


@component
class SpiderDocumentEmbedder(DocumentEmbedderBase):
    """Embeds documents (``title [SEP] content``) with the passage tower of a SPIDER dual encoder.

    SPIDER (Ram et al., 2022): one BERT tower for questions and passages, [CLS] pooling, dot product.

    Init parameters: see :class:`~spart.components.embedders._base.DocumentEmbedderBase`.

    Usage::

        from haystack import Document
        from spart.components.embedders import SpiderDocumentEmbedder

        embedder = SpiderDocumentEmbedder(model="path/to/model", batch_size=64)
        embedder.warm_up()
        docs = [Document(content="Hamlet is a tragedy by Shakespeare.", meta={"title": "Hamlet"})]
        embedded = embedder.run(docs)["documents"]  # new Documents with .embedding set
    """

    method_defaults = SPIDER_DEFAULTS
