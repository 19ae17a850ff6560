"""Training data: `patches/` (stage 1, a PAD build), `chat/` (stage 2, conversations), shared geometry, collation."""
