"""spart.components.document_stores."""

from spart.components.document_stores.faiss import FaissDocumentStore

__all__ = ["FaissDocumentStore"]
