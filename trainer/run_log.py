"""Rank 0's view of a run: a progress bar (samples/s, ETA), metrics.jsonl and TensorBoard scalars.

One JSON object per optimizer step in `OUTPUT/metrics.jsonl` (step, caption_loss, patch_loss, beta,
loss, lr, grad_norm, samples/s, regions, skipped_regions). On resume the lines past the checkpoint's
step are dropped first, so the file always describes one consistent run.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any


def truncate_metrics(path: str, last_step: int) -> None:
    """Keep only the lines with step <= last_step (a resumed run rewrites what came after)."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = [line for line in f if line.strip() and json.loads(line).get("step", 0) <= last_step]
    with open(path + ".tmp", "w") as f:
        f.writelines(lines)
    os.replace(path + ".tmp", path)


class RunLog:
    def __init__(self, output_dir: str, total_steps: int, start_step: int, samples_per_step: int,
                 tensorboard: bool = True, progress: bool = True):
        self.path = os.path.join(output_dir, "metrics.jsonl")
        truncate_metrics(self.path, start_step)
        self.file = open(self.path, "a")
        self.samples_per_step = samples_per_step
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # optional: only when asked for
            self.writer = SummaryWriter(os.path.join(output_dir, "tensorboard"), purge_step=start_step + 1)
        self.bar = None
        if progress:
            from tqdm import tqdm
            self.bar = tqdm(total=total_steps * samples_per_step, initial=start_step * samples_per_step,
                            unit="sample", unit_scale=True, dynamic_ncols=True, desc="pretrain")
        self._last = time.perf_counter()

    def log(self, step: int, metrics: dict[str, Any]) -> dict[str, Any]:
        now = time.perf_counter()
        row = {"step": step, **metrics, "samples_per_s": self.samples_per_step / max(now - self._last, 1e-9)}
        self._last = now
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        if self.writer is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)):
                    self.writer.add_scalar(f"train/{k}", v, step)
        if self.bar is not None:
            self.bar.update(self.samples_per_step)
            self.bar.set_postfix(cap=f"{row['caption_loss']:.3f}", patch=f"{row['patch_loss']:.3f}",
                                 beta=f"{row['beta']:.2f}", refresh=False)
        return row

    def close(self) -> None:
        self.file.close()
        if self.writer is not None:
            self.writer.close()
        if self.bar is not None:
            self.bar.close()
