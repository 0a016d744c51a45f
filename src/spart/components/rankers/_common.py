"""What every spart ranker does around its own score: check the query and documents, turn documents into passages,
mix in the retriever's score, and return new Documents best first. One place for each, shared by
:class:`~spart.components.rankers.QuestionLikelihoodRanker` and :class:`~spart.components.rankers.EncoderRanker`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from haystack import Document


def check_retriever_weight(value: Any) -> float:
    """A ranker's ``retriever_weight``: a number in [0, 1], returned as a float.

    :raises ValueError: for anything else.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"retriever_weight must be a number in [0, 1], got {value!r}")
    return float(value)


def check_rerank_inputs(name: str, query: Any, documents: Sequence[Any], retriever_weight: float) -> None:
    """Refuse what a ranker cannot score, naming the ranker and the offending document.

    :raises ValueError: an empty query, a non-Document, a document without text content, or (``retriever_weight``
        > 0) a document without the retriever's score.
    """
    if not isinstance(query, str) or not query.strip():
        raise ValueError(f"{name} needs a non-empty query string, got {query!r}")
    for doc in documents:
        if not isinstance(doc, Document):
            raise ValueError(f"{name} expects Documents, got {type(doc).__name__}")
        if not isinstance(doc.content, str) or not doc.content.strip():
            raise ValueError(f"{name}: document {doc.id!r} has no text content to score")
    if retriever_weight > 0:
        missing = [doc.id for doc in documents if doc.score is None]
        if missing:
            raise ValueError(
                f"{name}: retriever_weight={retriever_weight} needs the retriever's score on every document; "
                f"{len(missing)} have none (e.g. {missing[0]!r})"
            )


def as_passages(documents: Sequence[Document], title_meta_field: str) -> list[dict[str, str]]:
    """``{"id", "title", "text"}`` of each document (the title from ``meta[title_meta_field]``, else empty)."""
    return [
        {"id": doc.id, "title": (doc.meta or {}).get(title_meta_field) or "", "text": doc.content} for doc in documents
    ]


def reranked(
    documents: Sequence[Document], scores: Sequence[float], retriever_weight: float, top_k: int | None
) -> list[Document]:
    """New Documents best first by ``scores`` (mixed per query with the retriever's by
    :func:`spart.fusion.interpolate_zscores` when ``retriever_weight`` > 0); ties keep the retriever's order."""
    values = [float(s) for s in scores]
    if retriever_weight > 0:
        from spart.fusion import interpolate_zscores

        values = interpolate_zscores(values, [float(doc.score) for doc in documents], retriever_weight)
    order = sorted(range(len(documents)), key=lambda i: -values[i])  # stable: ties keep the input order
    if top_k is not None:
        order = order[:top_k]
    return [replace(documents[i], score=values[i]) for i in order]
