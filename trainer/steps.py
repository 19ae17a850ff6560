"""The engine-free pieces of the training loop, shared by both stages and testable without DeepSpeed.

A stage (`Stage`: stage 1 `trainer.pretrain_stage`, stage 2 `trainer.sft_stage`) says what differs: its data
plan, model, batch source, micro-step and metrics, extra checkpoint files and exports; `trainer.loop` is the
one loop that drives any stage through `trainer.engine`. Here: the run's step count, when to save, the resume
decision, metric reduction over micro-steps and ranks (`step_metrics`), the step driver (`run_steps`) and
moving a batch to the device. `STAGES` names the stages for launchers (Ray workers rebuild one by name).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol

import torch

from pad_pipeline.core.errors import PadError
from pad_pipeline.core.registry import Registry
from trainer import checkpoint

if TYPE_CHECKING:
    from trainer.models.loading import LoadedVLM

STAGES = Registry("training stage", {
    "pretrain": "trainer.pretrain_stage:PretrainStage",
    "sft": "trainer.sft_stage:SftStage",
})


class Stage(Protocol):
    """What one training stage adds to the shared loop (all methods run on every rank unless noted)."""

    name: str
    cfg: Any              # PretrainConfig or SftConfig: .model, .train, .launch, .grad_accum
    path_fields: tuple[str, ...]  # dotted config fields holding local paths (made absolute for Ray workers)
    progress_keys: tuple[str, ...]  # metrics shown beside the progress bar

    def identity(self) -> dict[str, Any]: ...
    def plan(self) -> dict[str, Any]: ...  # rank 0 at a fresh start: what the run reads; stored in checkpoints
    def build(self, dtype: torch.dtype) -> LoadedVLM: ...
    def batches(self, vlm: LoadedVLM, plan: dict[str, Any], rank: int, world: int, start: int) -> Iterable: ...
    def micro_step(self, engine: Any, batch: dict[str, Any], step: int, total: int) -> dict[str, float]: ...
    def row(self, sums: dict[str, float], step: int, total: int) -> dict[str, Any]: ...
    def save_weights(self, engine: Any, vlm: LoadedVLM, directory: str, rank: int) -> None: ...
    def finish(self, engine: Any, vlm: LoadedVLM, rank: int) -> dict[str, str]: ...


def total_steps(train: Any, num_samples: int) -> int:
    """Optimizer steps of the run: `train.max_steps`, else `epochs` passes over the data in global batches."""
    if train.max_steps is not None:
        return train.max_steps
    return max(1, int(train.epochs * num_samples) // train.global_batch_size)


def should_save(done: int, total: int, save_every: int) -> bool:
    """After `done` optimizer steps: every `save_every` steps and at the end."""
    return done % save_every == 0 or done == total


def resume_state(output_dir: str, resume: bool | str, identity: dict[str, Any]
                 ) -> tuple[str | None, dict[str, Any] | None]:
    """(newest complete checkpoint, its state) to resume from, or (None, None) for a fresh run.
    `resume`: True (a checkpoint must exist), False (none may exist) or "auto" (a Ray Train restart)."""
    latest = checkpoint.latest_checkpoint(output_dir)
    if resume == "auto":
        resume = latest is not None
    if not resume:
        if latest is not None:
            raise PadError(f"{output_dir}: holds checkpoints ({os.path.basename(latest)}); "
                           f"pass --resume to continue it or choose another train.output_dir")
        return None, None
    if latest is None:
        raise PadError(f"{output_dir}: no complete checkpoint to resume from")
    state = checkpoint.read_state(latest)
    have = state.get("identity", {})
    changed = sorted(k for k in identity if identity[k] != have.get(k))
    if changed:
        raise PadError(f"{latest}: cannot resume, the manifest changed {', '.join(changed)} since this checkpoint")
    return latest, state


def step_metrics(sums: dict[str, float], means: dict[str, str]) -> dict[str, float]:
    """Reduced sums -> metrics: each key of `means` is divided by the count named by its value (a count of 0
    gives 0.0); the other keys stay sums (counters)."""
    out = {}
    for key, value in sums.items():
        if key in means:
            count = sums[means[key]]
            out[key] = value / count if count else 0.0
        elif key not in means.values():
            out[key] = value
    return out


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
