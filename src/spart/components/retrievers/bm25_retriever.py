"""BM25Retriever: sparse BM25 retrieval from a FaissDocumentStore."""

from __future__ import annotations

from typing import Any

from haystack import Document, component
from haystack.document_stores.types import FilterPolicy, apply_filter_policy

from spart.components.document_stores import FaissDocumentStore
from spart.components.retrievers._common import check_store, retriever_from_dict, retriever_to_dict
from spart.validation import check_top_k


@component
class BM25Retriever:
    """Retrieves the documents with the highest BM25 score for a text query.

    The BM25 variant, its parameters and the tokenizer are the document store's (``bm25_method``, ...).
    Only documents that share at least one token with the query are returned, so fewer than ``top_k``
    documents may come back; a query made only of stop words returns an empty list. An empty or
    whitespace-only query is a ``ValueError``.

    :param document_store: The FaissDocumentStore to search.
    :param filters: Haystack filters applied to every query (see ``filter_policy``).
    :param top_k: Maximum number of documents returned (> 0).
    :param filter_policy: ``REPLACE`` (run-time filters replace init filters) or ``MERGE``.
    :raises ValueError: If ``top_k`` is not a positive integer.
    :raises TypeError: If ``document_store`` is not a FaissDocumentStore.

    Example::

        retriever = BM25Retriever(FaissDocumentStore.load("corpus.store"), top_k=20)
        retriever.run(query="who wrote hamlet")["documents"]
    """

    def __init__(
        self,
        document_store: FaissDocumentStore,
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
        filter_policy: FilterPolicy = FilterPolicy.REPLACE,
    ):
        self.document_store = check_store(document_store)
        self.filters = filters
        self.top_k = check_top_k(top_k)
        self.filter_policy = FilterPolicy.from_str(filter_policy) if isinstance(filter_policy, str) else filter_policy

    def to_dict(self) -> dict[str, Any]:
        """Serialise the component, with the document store nested.

        :returns: Dictionary with serialised data.
        """
        return retriever_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BM25Retriever:
        """Deserialise the component (re-opening the nested store).

        :param data: Output of :meth:`to_dict`.
        :returns: The component.
        """
        return retriever_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(
        self, query: str, filters: dict[str, Any] | None = None, top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """Retrieve documents for one query.

        :param query: The query text (non-empty).
        :param filters: Run-time filters, combined with the init filters per ``filter_policy``.
        :param top_k: Overrides the init ``top_k`` (> 0).
        :returns: ``{"documents": [...]}`` sorted by descending BM25 score.
        :raises ValueError: On ``top_k <= 0`` or an empty query.
        """
        filters = apply_filter_policy(self.filter_policy, self.filters, filters)
        top_k = self.top_k if top_k is None else check_top_k(top_k)
        return {"documents": self.document_store.bm25_retrieval(query=query, top_k=top_k, filters=filters)}
