"""spart's Haystack components, one per module, re-exported here lazily.

``from spart.components import SpiderTextEmbedder`` works, and ``import spart.components`` stays light: a name
imports its subpackage (and torch, faiss...) only when it is first used.
"""

from __future__ import annotations

from spart._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "SpiderTextEmbedder": ".embedders",
        "SpiderDocumentEmbedder": ".embedders",
        "ARTTextEmbedder": ".embedders",
        "ARTDocumentEmbedder": ".embedders",
        "FaissDocumentStore": ".document_stores",
        "FaissEmbeddingRetriever": ".retrievers",
        "BM25Retriever": ".retrievers",
        "HybridScoreFuser": ".fusers",
        "QuestionLikelihoodRanker": ".rankers",
        "EncoderRanker": ".rankers",
        "AnswerQueryExpander": ".expanders",
    },
)
