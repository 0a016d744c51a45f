"""Dense embedders: SPIDER and ART text (query) and document (passage) embedders over `DualEncoder`.

Names load lazily, so importing this package does not import torch or Haystack's component machinery.
"""

from __future__ import annotations

from spart._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "SpiderTextEmbedder": ".spider_text_embedder",
    "SpiderDocumentEmbedder": ".spider_document_embedder",
    "ARTTextEmbedder": ".art_text_embedder",
    "ARTDocumentEmbedder": ".art_document_embedder",
})
