"""Model wrappers: each owns its weights, its preprocessing and its forward pass (no Ray, no I/O)."""
