"""Scripts that draw the figures committed under docs/."""
