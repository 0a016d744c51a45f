"""FaissEmbeddingRetriever: dense (inner-product) retrieval from a FaissDocumentStore."""

from __future__ import annotations

from typing import Any

from haystack import Document, component
from haystack.document_stores.types import FilterPolicy, apply_filter_policy

from spart.components.document_stores import FaissDocumentStore
from spart.components.retrievers._common import check_store, retriever_from_dict, retriever_to_dict
from spart.validation import check_top_k


@component
class FaissEmbeddingRetriever:
    """Retrieves the documents whose embeddings have the highest inner product with the query embedding.

    ``Document.score`` is the raw inner product (no scaling). Use it after a Spider/ART text embedder.

    :param document_store: The FaissDocumentStore to search.
    :param filters: Haystack filters applied to every query (see ``filter_policy``).
    :param top_k: Maximum number of documents returned (> 0).
    :param return_embedding: Include the documents' embeddings in the output.
    :param filter_policy: ``REPLACE`` (run-time filters replace init filters) or ``MERGE``.
    :raises ValueError: If ``top_k`` is not a positive integer.
    :raises TypeError: If ``document_store`` is not a FaissDocumentStore.

    Example::

        store = FaissDocumentStore(path="corpus.store", embedding_dim=384)
        retriever = FaissEmbeddingRetriever(store, top_k=5)
        retriever.run(query_embedding=text_embedder.run("who wrote hamlet")["embedding"])["documents"]
    """

    def __init__(
        self,
        document_store: FaissDocumentStore,
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
        return_embedding: bool = False,
        filter_policy: FilterPolicy = FilterPolicy.REPLACE,
    ):
        self.document_store = check_store(document_store)
        self.filters = filters
        self.top_k = check_top_k(top_k)
        self.return_embedding = return_embedding
        self.filter_policy = FilterPolicy.from_str(filter_policy) if isinstance(filter_policy, str) else filter_policy

    def to_dict(self) -> dict[str, Any]:
        """Serialise the component, with the document store nested.

        :returns: Dictionary with serialised data.
        """
        return retriever_to_dict(self, return_embedding=self.return_embedding)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaissEmbeddingRetriever:
        """Deserialise the component (re-opening the nested store).

        :param data: Output of :meth:`to_dict`.
        :returns: The component.
        """
        return retriever_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(
        self,
        query_embedding: list[float],
        filters: dict[str, Any] | None = None,
        top_k: int | None = None,
        return_embedding: bool | None = None,
    ) -> dict[str, list[Document]]:
        """Retrieve documents for one query embedding.

        :param query_embedding: The query embedding (``embedding_dim`` floats).
        :param filters: Run-time filters, combined with the init filters per ``filter_policy``.
        :param top_k: Overrides the init ``top_k`` (> 0).
        :param return_embedding: Overrides the init ``return_embedding``.
        :returns: ``{"documents": [...]}`` sorted by descending inner product.
        :raises ValueError: On ``top_k <= 0`` or a query embedding of the wrong dimension.
        """
        filters = apply_filter_policy(self.filter_policy, self.filters, filters)
        top_k = self.top_k if top_k is None else check_top_k(top_k)
        docs = self.document_store.embedding_retrieval(
            query_embedding=query_embedding,
            top_k=top_k,
            filters=filters,
            return_embedding=self.return_embedding if return_embedding is None else return_embedding,
        )
        return {"documents": docs}
