"""SpiderTextEmbedder: embeds a query string with SPIDER's preset (one shared tower, [CLS] pooling)."""

from __future__ import annotations

from haystack import component

from spart.components.embedders._base import TextEmbedderBase
from spart.encoders.config import SPIDER_DEFAULTS


@component
class SpiderTextEmbedder(TextEmbedderBase):
    """Embeds a query string with the query tower of a SPIDER dual encoder.

    SPIDER (Ram et al., 2022): one BERT tower for questions and passages, [CLS] pooling, dot product.

    Init parameters: see :class:`~spart.components.embedders._base.DualEncoderEmbedderBase`.

    Usage::

        from spart.components.embedders import SpiderTextEmbedder

        embedder = SpiderTextEmbedder(model="path/to/model")
        embedder.warm_up()
        vector = embedder.run("who wrote hamlet?")["embedding"]  # list[float]
    """

    method_defaults = SPIDER_DEFAULTS
