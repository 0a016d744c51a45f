"""spart.components.retrievers."""

from spart.components.retrievers.bm25_retriever import BM25Retriever
from spart.components.retrievers.faiss_embedding_retriever import FaissEmbeddingRetriever

__all__ = ["BM25Retriever", "FaissEmbeddingRetriever"]
