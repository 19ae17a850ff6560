"""Step schedules as pure functions: the run's step count, when to save, the patch-loss weight beta and the
learning-rate multiplier.

beta ramps linearly from 0 on the first optimizer step to `beta_max` on the last one. The learning
rate follows LLaVA's (HF Trainer's) cosine schedule: linear warmup over ceil(warmup_ratio * total)
steps from 0, then half a cosine down to 0 at `total`.
"""

from __future__ import annotations

import math
from typing import Any


def beta_at(step: int, total_steps: int, beta_max: float) -> float:
    """beta of optimizer step `step` (0-based) of `total_steps`."""
    if total_steps <= 1:
        return beta_max
    return beta_max * min(max(step, 0), total_steps - 1) / (total_steps - 1)


def warmup_steps(total_steps: int, warmup_ratio: float) -> int:
    return math.ceil(total_steps * warmup_ratio)


class CosineWithWarmup:
    """LR multiplier of step `step` (a picklable callable for `torch.optim.lr_scheduler.LambdaLR`)."""

    def __init__(self, total_steps: int, warmup_ratio: float):
        self.total_steps = total_steps
        self.warmup = warmup_steps(total_steps, warmup_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return step / max(1, self.warmup)
        progress = (step - self.warmup) / max(1, self.total_steps - self.warmup)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))))


def total_steps(train: Any, num_samples: int) -> int:
    """Optimizer steps of the run: `train.max_steps`, else `epochs` passes over the data in global batches."""
    if train.max_steps is not None:
        return train.max_steps
    return max(1, int(train.epochs * num_samples) // train.global_batch_size)


def should_save(done: int, total: int, save_every: int) -> bool:
    """After `done` optimizer steps: every `save_every` steps and at the end."""
    return done % save_every == 0 or done == total
