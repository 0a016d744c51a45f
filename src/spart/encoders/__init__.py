"""spart.encoders."""
