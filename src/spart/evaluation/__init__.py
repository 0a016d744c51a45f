"""spart.evaluation."""
