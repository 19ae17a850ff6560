"""The training loop of one data-parallel rank, for any stage (the same code locally and in Ray Train workers).

`train_worker(stage, resume)` joins the process group, restores the newest checkpoint's state when resuming
(else rank 0 makes the stage's data plan and broadcasts it), builds the stage's model and a DeepSpeed engine,
then runs `total_steps` optimizer steps of `grad_accum` micro-steps each (`stage.micro_step`), reducing
metrics over micro-steps and ranks, logging every step (rank 0), checkpointing every `save_every` steps and at
the end (complete or invisible: `trainer.training.checkpoint`). The driver exports from the final checkpoint. The
stage protocol lives in `trainer.training.stage`, the step arithmetic in `trainer.training.schedule`. Returns a
summary dict (rank 0's view).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist

from pad_pipeline.core import runtime
from pad_pipeline.core.config import config_dict, dump_resolved
from pad_pipeline.core.errors import PadError
from trainer.models.placement import move_to
from trainer.run_layout import RunLayout
from trainer.training import checkpoint
from trainer.training.collectives import all_reduce_sum, barrier, broadcast_object
from trainer.training.engine import (
    TrainingEngine,
    device_for_rank,
    init_distributed,
    read_deepspeed_json,
    resolve_deepspeed_config,
)
from trainer.training.resume import resume_state
from trainer.training.run_log import RunLog
from trainer.training.schedule import CosineWithWarmup, should_save, total_steps
from trainer.training.stage import Stage


def run_steps(start: int, total: int, step: Callable[[int], dict[str, Any]],
              after: Callable[[int, dict[str, Any]], None]) -> dict[str, Any]:
    """Optimizer steps `start` .. `total - 1`: `step(s)` returns the step's metrics row, then `after(s + 1, row)`
    (logging, saving). Returns the last row ({} when there was nothing left to do)."""
    row: dict[str, Any] = {}
    for s in range(start, total):
        row = step(s)
        after(s + 1, row)
    return row


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Tensors moved to `device` (non-blocking); other values (e.g. lists of bad samples) kept as they are."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


@dataclass
class Rank:
    rank: int
    world: int
    bf16: bool
    device: torch.device

    @property
    def dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.bf16 else torch.float32


def _join(cfg: Any) -> Rank:
    use_gpu = runtime.use_gpu(cfg.launch.use_gpu)
    init_distributed("nccl" if use_gpu else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if world != cfg.launch.num_workers:
        raise PadError(f"field 'launch.num_workers': {cfg.launch.num_workers}, but {world} ranks joined")
    bf16 = cfg.train.precision == "bf16" or (cfg.train.precision == "auto" and use_gpu)
    return Rank(rank, world, bf16, device_for_rank(use_gpu))


def _save(stage: Stage, engine: TrainingEngine, vlm: Any, step: int, state: dict[str, Any], r: Rank) -> None:
    out = stage.cfg.train.output_dir
    if r.rank == 0:
        checkpoint.prepare_partial(out, step)
    barrier(r.device)
    partial = checkpoint.partial_dir(out, step)
    engine.save(partial)
    stage.save_weights(engine, vlm, partial, r.rank)
    barrier(r.device)
    if r.rank == 0:
        checkpoint.commit(out, step, state, stage.cfg.train.keep_checkpoints)
    barrier(r.device)


def _engine(stage: Stage, vlm: Any, steps: int, r: Rank, deepspeed_json: dict[str, Any] | None) -> TrainingEngine:
    cfg = stage.cfg
    raw = deepspeed_json if deepspeed_json is not None else read_deepspeed_json(cfg.train.deepspeed)
    ds_config = resolve_deepspeed_config(raw, micro_batch=cfg.train.micro_batch_size, grad_accum=cfg.grad_accum,
                                         world=r.world, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay,
                                         grad_clip=cfg.train.grad_clip, bf16=r.bf16)
    return TrainingEngine(vlm.model, ds_config, CosineWithWarmup(steps, cfg.train.warmup_ratio))


def _one_step(stage: Stage, engine: TrainingEngine, batches: Iterator, step: int, steps: int) -> dict[str, Any]:
    lr = engine.lr
    sums: dict[str, float] = {}
    for _ in range(stage.cfg.grad_accum):
        got = stage.micro_step(engine, to_device(next(batches), engine.device), step, steps)
        for k, v in got.items():
            sums[k] = sums.get(k, 0.0) + float(v)
    keys = sorted(sums)
    reduced = all_reduce_sum([sums[k] for k in keys], engine.device)
    row = stage.row(dict(zip(keys, reduced, strict=True)), step, steps)
    return {**row, "lr": lr, "grad_norm": engine.grad_norm()}


def _log(stage: Stage, steps: int, start: int) -> RunLog:
    cfg = stage.cfg
    os.makedirs(cfg.train.output_dir, exist_ok=True)
    dump_resolved(cfg, RunLayout(cfg.train.output_dir).config)
    return RunLog(cfg.train.output_dir, steps, start, cfg.train.global_batch_size, cfg.train.tensorboard,
                  cfg.train.progress, desc=stage.name, postfix=stage.progress_keys)


def train_worker(stage: Stage, resume: bool | str = False,
                 deepspeed_json: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run (or resume) the whole schedule of `stage` on this rank; `deepspeed_json` overrides reading
    `train.deepspeed` (Ray workers get the driver's copy)."""
    runtime.prepare_cpu_threads()
    cfg = stage.cfg
    r = _join(cfg)
    latest, state = broadcast_object(resume_state(cfg.train.output_dir, resume, stage.identity())
                                     if r.rank == 0 else (None, None), r.device)
    plan = state["plan"] if state else broadcast_object(stage.plan() if r.rank == 0 else None, r.device)
    steps = state["total_steps"] if state and cfg.train.max_steps is None else total_steps(cfg.train,
                                                                                             plan["num_samples"])
    vlm = stage.build(r.dtype)
    move_to(vlm.model, r.device)
    engine = _engine(stage, vlm, steps, r, deepspeed_json)
    start = 0
    if latest is not None:
        engine.load(latest)
        start = int(state["step"])
    per_rank_step = cfg.grad_accum * cfg.train.micro_batch_size
    batches = iter(stage.batches(vlm, plan, r.rank, r.world, start * per_rank_step))
    log = _log(stage, steps, start) if r.rank == 0 else None
    ckpt_state = {"total_steps": steps, "identity": stage.identity(), "world_size": r.world, "plan": plan,
                  "stage": stage.name}

    def after(done: int, row: dict[str, Any]) -> None:
        if log is not None:
            row.update(log.log(done, row))
        if should_save(done, steps, cfg.train.save_every):
            _save(stage, engine, vlm, done, {**ckpt_state, "samples_per_rank": done * per_rank_step}, r)

    engine.module.train()
    last = run_steps(start, steps, lambda s: _one_step(stage, engine, batches, s, steps), after)
    if log is not None:
        log.close()
    barrier(r.device)
    return {"steps": steps, "start_step": start, "last": last,
            "output_dir": cfg.train.output_dir, "config": config_dict(cfg)}
