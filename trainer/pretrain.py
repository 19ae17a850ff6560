"""`pad pretrain MANIFEST [--set k=v] [--resume]`: stage-1 patch-aligned projector pretraining.

`run` validates the manifest and the output folder up front (a bad manifest or a refused resume never
starts a job), then hands the run to `trainer.launch` (one local process or Ray Train workers).
"""

from __future__ import annotations

import sys

from pad_pipeline.core.errors import PadError
from trainer.config import load_pretrain_config


def run(manifest: str, overrides: list[str], resume: bool = False) -> int:
    cfg = load_pretrain_config(manifest, overrides)
    # Imported once the manifest validates, so a bad one fails in well under two seconds (no torch yet).
    from trainer import checkpoint
    from trainer.data.pad_stream import list_shards
    from trainer.launch import launch, resolve_mode

    latest = checkpoint.latest_checkpoint(cfg.train.output_dir)
    if resume and latest is None:
        raise PadError(f"{cfg.train.output_dir}: no complete checkpoint to resume from (drop --resume)")
    if not resume and latest is not None:
        raise PadError(f"{cfg.train.output_dir}: holds checkpoints; pass --resume or set train.output_dir")
    if not resume:
        shards = list_shards(cfg.data.path)  # fails fast on a missing or empty build
        print(f"pad pretrain: {sum(s.num_samples for s in shards)} samples in {len(shards)} committed shards of "
              f"{cfg.data.path}; {resolve_mode(cfg)} launch, {cfg.launch.num_workers} worker(s)", file=sys.stderr)
    summary = launch(cfg, resume)
    exported = summary.get("exported") or {}
    print(f"pad pretrain: done, {summary.get('steps')} steps; projector exported to "
          f"{exported.get('mm_projector', cfg.train.output_dir)}", file=sys.stderr)
    return 0
