"""spart.components.rankers."""
