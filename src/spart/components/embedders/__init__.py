"""Dense embedders: SPIDER and ART text (query) and document (passage) embedders over `DualEncoder`.

Names load lazily, so importing this package does not import torch or Haystack's component machinery.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {
    "SpiderTextEmbedder": "spider_text_embedder",
    "SpiderDocumentEmbedder": "spider_document_embedder",
    "ARTTextEmbedder": "art_text_embedder",
    "ARTDocumentEmbedder": "art_document_embedder",
}

__all__ = list(_MODULES)


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
