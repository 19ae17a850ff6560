"""What a training stage is: the `Stage` protocol the one loop drives, and `STAGES`, the registry of stages.

A stage (stage 1 `trainer.stages.pretrain`, stage 2 `trainer.stages.sft`) says what differs: its data plan,
model, batch source, micro-step and metrics, extra checkpoint files; `trainer.training.loop` is the one loop
that drives any stage through `trainer.training.engine`. `STAGES` names the stages for launchers (Ray workers
rebuild one by name); `step_metrics` reduces a step's summed counters into the stage's metrics row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Protocol

import torch

from pad_pipeline.core.registry import Registry

if TYPE_CHECKING:
    from trainer.models.loading import LoadedVLM

STAGES = Registry("training stage", {
    "pretrain": "trainer.stages.pretrain:PretrainStage",
    "sft": "trainer.stages.sft:SftStage",
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
