"""Manifest schemas of the training side: `sections` (shared once), `pretrain` (stage 1), `sft` (stage 2)."""
