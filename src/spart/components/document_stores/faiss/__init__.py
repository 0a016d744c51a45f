"""FaissDocumentStore as a package: the store (document_store.py), its SQLite database (database.py), the filter
compiler (filters.py), row conversion (converters.py) and the on-disk layout (persistence.py)."""

from spart.components.document_stores.faiss.document_store import FaissDocumentStore

__all__ = ["FaissDocumentStore"]
