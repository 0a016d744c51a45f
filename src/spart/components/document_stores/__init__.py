"""spart.components.document_stores."""

from spart.components.document_stores.faiss_document_store import FaissDocumentStore

__all__ = ["FaissDocumentStore"]
