"""Training side of synnet: data, networks, losses, the fit/evaluate CLIs and model export."""
