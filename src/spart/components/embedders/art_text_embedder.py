"""ARTTextEmbedder: embeds a query string with ART's preset (separate query and passage towers, [CLS] pooling)."""

from __future__ import annotations

from haystack import component

from spart.components.embedders._base import TextEmbedderBase
from spart.encoders.config import ART_DEFAULTS


@component
class ARTTextEmbedder(TextEmbedderBase):
    """Embeds a query string with the query tower of an ART dual encoder.

    ART (Sachan et al., 2022): separate question and passage towers, [CLS] pooling, dot product; a single
    model directory gives two towers that start as copies of it.

    Init parameters: see :class:`~spart.components.embedders._base.DualEncoderEmbedderBase`.

    Usage::

        from spart.components.embedders import ARTTextEmbedder

        embedder = ARTTextEmbedder(model="path/to/model")
        embedder.warm_up()
        vector = embedder.run("who wrote hamlet?")["embedding"]  # list[float]
    """

    method_defaults = ART_DEFAULTS
