"""spart's Haystack components, one per module, re-exported here lazily.

``from spart.components import SpiderTextEmbedder`` works, and ``import spart.components`` stays light: a name
imports its subpackage (and torch, faiss...) only when it is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

_SUBPACKAGES = {
    "SpiderTextEmbedder": "embedders",
    "SpiderDocumentEmbedder": "embedders",
    "ARTTextEmbedder": "embedders",
    "ARTDocumentEmbedder": "embedders",
    "FaissDocumentStore": "document_stores",
    "FaissEmbeddingRetriever": "retrievers",
    "BM25Retriever": "retrievers",
    "HybridScoreFuser": "fusers",
    "QuestionLikelihoodRanker": "rankers",
}

__all__ = list(_SUBPACKAGES)


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return getattr(importlib.import_module(f"{__name__}.{_SUBPACKAGES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
