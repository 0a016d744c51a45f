"""spart.components.fusers."""
