"""What each training stage adds to the one loop: `pretrain` (stage 1) and `sft` (stage 2)."""
