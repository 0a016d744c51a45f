"""Former location of FaissDocumentStore, kept so that pipelines serialised with this class path still load."""

from spart.components.document_stores.faiss.document_store import FaissDocumentStore

__all__ = ["FaissDocumentStore"]
