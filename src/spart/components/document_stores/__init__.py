"""spart.components.document_stores."""
