"""spart.training."""
