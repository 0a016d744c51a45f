"""spart.components.retrievers."""
