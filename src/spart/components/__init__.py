"""spart.components."""
