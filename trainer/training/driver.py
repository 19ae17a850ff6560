"""The driver of a training run: `pad pretrain MANIFEST` (stage 1) and `pad sft MANIFEST` (stage 2).

`run_pretrain` / `run_sft` validate the manifest and the output folder up front (a bad manifest or a refused
resume never starts a job), prepare the data (stage 2 indexes its conversations, `trainer.stages.sft`), hand
the run to `trainer.training.launch` (one local process or Ray Train workers) and report the exports.
"""

from __future__ import annotations

import os
import sys

from pad_pipeline.core.errors import PadError
from trainer.config.pretrain import load_pretrain_config
from trainer.config.sft import load_sft_config


def run_pretrain(manifest: str, overrides: list[str], resume: bool = False) -> int:
    cfg = load_pretrain_config(manifest, overrides)
    # Imported once the manifest validates, so a bad one fails in well under two seconds (no torch yet).
    from trainer.data.patches.stream import list_shards
    from trainer.export.write import write_exports
    from trainer.training import checkpoint
    from trainer.training.launch import launch, resolve_mode
    from trainer.training.resume import resume_point

    resume_point(cfg.train.output_dir, resume)
    if not resume:
        shards = list_shards(cfg.data.path)  # fails fast on a missing or empty build
        print(f"pad pretrain: {sum(s.num_samples for s in shards)} samples in {len(shards)} committed shards of "
              f"{cfg.data.path}; {resolve_mode(cfg)} launch, {cfg.launch.num_workers} worker(s)", file=sys.stderr)
    summary = launch(cfg, resume)
    print(f"pad pretrain: done, {summary.get('steps')} steps; checkpoints in "
          f"{checkpoint.checkpoints_dir(cfg.train.output_dir)}", file=sys.stderr)
    return write_exports(cfg, stage=1)


def _log(message: str) -> None:
    print(f"pad sft: {message}", file=sys.stderr)


def run_sft(manifest: str, overrides: list[str], resume: bool = False, check_only: bool = False) -> int:
    cfg = load_sft_config(manifest, overrides)
    if check_only:
        from trainer.data.chat.check import check

        return check(cfg)
    # Imported once the manifest validates, so a bad one fails in well under two seconds (no torch yet).
    from trainer.data.chat.check import prepare_index
    from trainer.export.write import write_exports
    from trainer.training import checkpoint
    from trainer.training.launch import launch, resolve_mode
    from trainer.training.resume import resume_point

    latest = resume_point(cfg.train.output_dir, resume)
    source = cfg.init.projector
    if source and "://" not in source and not os.path.exists(source):
        raise PadError(f"field 'init.projector': {source} does not exist (run `pad pretrain` first, or point it at "
                       f"a run folder, projector.safetensors or mm_projector.bin)")
    os.makedirs(cfg.train.output_dir, exist_ok=True)
    good = prepare_index(cfg, latest if resume else None)
    _log(f"{good} conversations, template {cfg.data.template}; {resolve_mode(cfg)} launch, "
         f"{cfg.launch.num_workers} worker(s)")
    summary = launch(cfg, resume)
    _log(f"done, {summary.get('steps')} steps; checkpoints in {checkpoint.checkpoints_dir(cfg.train.output_dir)}")
    return write_exports(cfg, stage=2)
