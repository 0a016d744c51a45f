"""spart.components.embedders."""
