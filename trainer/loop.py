"""The stage-1 training loop of one data-parallel rank (the same code locally and in Ray Train workers).

`train_worker(cfg, resume)` joins the process group, loads the VLM, freezes the shard list (rank 0
lists committed shards and broadcasts them), restores a checkpoint when resuming, then runs
`total_steps` optimizer steps of `grad_accum` micro-batches each with L = caption + beta * patch,
logging every step, checkpointing every `save_every` steps and at the end, and finally exporting the
projector. Returns a summary dict (rank 0's view).
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from pad_pipeline.core import runtime
from pad_pipeline.core.config import config_dict, dump_resolved
from pad_pipeline.core.errors import PadError
from trainer import checkpoint
from trainer.config import PretrainConfig, resume_identity
from trainer.data.collate import PatchCollator
from trainer.data.geometry import ProcessorSpec
from trainer.data.pad_stream import PadStream, ShardInfo, list_shards
from trainer.data.patch_sample import PatchSampleBuilder
from trainer.engine import (
    TrainingEngine,
    device_for_rank,
    init_distributed,
    read_deepspeed_json,
    resolve_deepspeed_config,
)
from trainer.export import export_projector, projector_metadata
from trainer.losses import total_loss
from trainer.models.loading import LoadedVLM, build_vlm
from trainer.run_log import RunLog
from trainer.schedule import CosineWithWarmup, beta_at


def _broadcast(obj: Any) -> Any:
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def total_steps(cfg: PretrainConfig, num_samples: int) -> int:
    """Optimizer steps of the run: `train.max_steps`, else `epochs` passes over the build."""
    if cfg.train.max_steps is not None:
        return cfg.train.max_steps
    return max(1, int(cfg.train.epochs * num_samples) // cfg.train.global_batch_size)


def _resume_state(cfg: PretrainConfig, resume: bool | str) -> tuple[str | None, dict[str, Any] | None]:
    """`resume`: True (a checkpoint must exist), False (none may exist) or "auto" (a Ray Train restart)."""
    latest = checkpoint.latest_checkpoint(cfg.train.output_dir)
    if resume == "auto":
        resume = latest is not None
    if not resume:
        if latest is not None:
            raise PadError(f"{cfg.train.output_dir}: holds checkpoints ({os.path.basename(latest)}); "
                           f"pass --resume to continue it or choose another train.output_dir")
        return None, None
    if latest is None:
        raise PadError(f"{cfg.train.output_dir}: no complete checkpoint to resume from")
    state = checkpoint.read_state(latest)
    want, have = resume_identity(cfg), state.get("identity", {})
    changed = sorted(k for k in want if want[k] != have.get(k))
    if changed:
        raise PadError(f"{latest}: cannot resume, the manifest changed {', '.join(changed)} since this checkpoint")
    return latest, state


def _loader(cfg: PretrainConfig, vlm: LoadedVLM, shards: list[ShardInfo], rank: int, world: int,
            start: int) -> DataLoader:
    spec = ProcessorSpec.from_processor(vlm.processor, cfg.data.image_aspect)
    builder = PatchSampleBuilder(vlm.tokenizer, spec, vlm.token_grid,
                                 max_caption_tokens=cfg.model.llm.max_length - vlm.num_tokens - 1,
                                 min_coverage=cfg.data.min_coverage, max_regions=cfg.data.max_regions)
    stream = PadStream(shards, builder, rank=rank, world=world, seed=cfg.train.seed, shuffle=cfg.data.shuffle,
                       start=start, micro_batch=cfg.train.micro_batch_size)
    collate = PatchCollator(vlm.tokenizer.pad_token_id or 0)
    workers = cfg.data.num_workers
    return DataLoader(stream, batch_size=cfg.train.micro_batch_size, collate_fn=collate, num_workers=workers,
                      prefetch_factor=cfg.data.prefetch_factor if workers else None,
                      persistent_workers=False, pin_memory=torch.cuda.is_available())


def _save(cfg: PretrainConfig, engine: TrainingEngine, step: int, state: dict[str, Any], rank: int) -> None:
    out = cfg.train.output_dir
    if rank == 0:
        checkpoint.prepare_partial(out, step)
    dist.barrier()
    partial = checkpoint.partial_dir(out, step)
    engine.save(partial)
    projector_state = engine.full_state_dict(engine.module.projector)
    dist.barrier()
    if rank == 0:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in projector_state.items()}, os.path.join(partial, "projector.safetensors"))
        checkpoint.commit(out, step, state, cfg.train.keep_checkpoints)
    dist.barrier()


def _to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def train_worker(cfg: PretrainConfig, resume: bool | str = False,
                 deepspeed_json: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run (or resume) the whole stage-1 schedule on this rank; `deepspeed_json` overrides reading
    `train.deepspeed` (Ray workers get the driver's copy)."""
    runtime.prepare_cpu_threads()
    use_gpu = runtime.use_gpu(cfg.launch.use_gpu)
    init_distributed("nccl" if use_gpu else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if world != cfg.launch.num_workers:
        raise PadError(f"field 'launch.num_workers': {cfg.launch.num_workers}, but {world} ranks joined")
    device = device_for_rank(use_gpu)
    bf16 = cfg.train.precision == "bf16" or (cfg.train.precision == "auto" and use_gpu)
    dtype = torch.bfloat16 if bf16 else torch.float32

    latest, state = _resume_state(cfg, resume) if rank == 0 else (None, None)
    latest, state = _broadcast((latest, state))
    shards = [ShardInfo(**s) for s in state["shards"]] if state else _broadcast(list_shards(cfg.data.path) if rank == 0 else None)
    num_samples = sum(s.num_samples for s in shards)
    steps = state["total_steps"] if state and cfg.train.max_steps is None else total_steps(cfg, num_samples)

    vlm = build_vlm(cfg.model, dtype=dtype, seed=cfg.train.seed)
    vlm.model.to(device)
    raw = deepspeed_json if deepspeed_json is not None else read_deepspeed_json(cfg.train.deepspeed)
    ds_config = resolve_deepspeed_config(raw, micro_batch=cfg.train.micro_batch_size,
                                         grad_accum=cfg.grad_accum, world=world, lr=cfg.train.lr,
                                         weight_decay=cfg.train.weight_decay, grad_clip=cfg.train.grad_clip, bf16=bf16)
    engine = TrainingEngine(vlm.model, ds_config, CosineWithWarmup(steps, cfg.train.warmup_ratio))
    start_step = 0
    if latest is not None:
        engine.load(latest)
        start_step = int(state["step"])
    samples_per_rank_step = cfg.grad_accum * cfg.train.micro_batch_size
    loader = _loader(cfg, vlm, shards, rank, world, start=start_step * samples_per_rank_step)

    log = None
    if rank == 0:
        os.makedirs(cfg.train.output_dir, exist_ok=True)
        dump_resolved(cfg, os.path.join(cfg.train.output_dir, "config.yaml"))
        log = RunLog(cfg.train.output_dir, steps, start_step, cfg.train.global_batch_size,
                     cfg.train.tensorboard, cfg.train.progress)
    ckpt_state = {"total_steps": steps, "identity": resume_identity(cfg), "world_size": world,
                  "shards": [s.__dict__ for s in shards], "num_samples": num_samples}

    engine.module.train()
    batches = iter(loader)
    last_row: dict[str, Any] = {}
    for step in range(start_step, steps):
        beta = beta_at(step, steps, cfg.train.beta_max)
        lr = engine.lr
        sums = torch.zeros(4, dtype=torch.float64)  # caption, patch, regions, skipped
        for _ in range(cfg.grad_accum):
            batch = _to_device(next(batches), engine.device)
            out = engine.forward(batch)
            engine.backward(total_loss(out["caption_loss"], out["patch_loss"], beta))
            engine.step()
            sums += torch.tensor([out["caption_loss"].item(), out["patch_loss"].item(),
                                  batch["regions"].item(), batch["skipped_regions"].item()], dtype=torch.float64)
        dist.all_reduce(sums)
        caption, patch = (sums[:2] / (cfg.grad_accum * world)).tolist()
        if log is not None:
            last_row = log.log(step + 1, {"caption_loss": caption, "patch_loss": patch, "beta": beta,
                                          "loss": caption + beta * patch, "lr": lr, "grad_norm": engine.grad_norm(),
                                          "regions": int(sums[2]), "skipped_regions": int(sums[3])})
        done = step + 1
        if done % cfg.train.save_every == 0 or done == steps:
            _save(cfg, engine, done, {**ckpt_state, "samples_per_rank": done * samples_per_rank_step}, rank)

    projector_state = engine.full_state_dict(engine.module.projector)
    exported: dict[str, str] = {}
    if rank == 0:
        vcfg, p = vlm.model.vision.config, cfg.model.projector
        meta = projector_metadata(p.kind, vcfg.hidden_size, vlm.model.llm.config.hidden_size, p.num_tokens, p.depth,
                                  p.hidden_size, vlm.vision_grid ** 2 + (0 if cfg.model.vision.drop_cls else 1))
        exported = export_projector(projector_state, os.path.join(cfg.train.output_dir, "export"), meta,
                                    cfg.export.dtype)
        log.close()
    dist.barrier()
    return {"steps": steps, "start_step": start_step, "last": last_row, "exported": exported,
            "output_dir": cfg.train.output_dir, "config": config_dict(cfg)}
