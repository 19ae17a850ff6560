"""Rank 0's view of a run: a progress bar (samples/s, ETA), metrics.jsonl and TensorBoard scalars.

One JSON object per optimizer step in `OUTPUT/metrics.jsonl` (the stage's metrics, e.g. caption_loss,
patch_loss, beta for stage 1 or loss, samples, skipped_samples for stage 2, plus lr, grad_norm, samples_per_s,
and tokens_per_s when the step counts `tokens`). On resume the lines past the checkpoint's step are dropped
first, so the file always describes one consistent run; a line torn by a crash mid-write is dropped too.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from trainer.run_layout import RunLayout

_SHORT = {"caption_loss": "cap", "patch_loss": "patch", "skipped_samples": "skipped"}  # progress-bar names


def _parse(line: str) -> dict[str, Any] | None:
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    return row if isinstance(row, dict) else None


def truncate_metrics(path: str, last_step: int) -> None:
    """Keep only the lines with step <= last_step (a resumed run rewrites what came after); unreadable lines
    (a torn last line) are dropped and counted on stderr."""
    if not os.path.exists(path):
        return
    kept, torn = [], 0
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            row = _parse(line)
            if row is None:
                torn += 1
            elif row.get("step", 0) <= last_step:
                kept.append(line if line.endswith("\n") else line + "\n")
    if torn:
        print(f"{path}: dropped {torn} unreadable line(s) (a write cut short by a crash)", file=sys.stderr)
    with open(path + ".tmp", "w") as f:
        f.writelines(kept)
    os.replace(path + ".tmp", path)


class RunLog:
    def __init__(self, output_dir: str, total_steps: int, start_step: int, samples_per_step: int,
                 tensorboard: bool = True, progress: bool = True, desc: str = "pretrain",
                 postfix: tuple[str, ...] = ("caption_loss", "patch_loss", "beta")):
        self.path = RunLayout(output_dir).metrics
        truncate_metrics(self.path, start_step)
        self.file = open(self.path, "a")
        self.samples_per_step = samples_per_step
        self.postfix = postfix
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # optional: only when asked for
            self.writer = SummaryWriter(RunLayout(output_dir).tensorboard, purge_step=start_step + 1)
        self.bar = None
        if progress:
            from tqdm import tqdm
            self.bar = tqdm(total=total_steps * samples_per_step, initial=start_step * samples_per_step,
                            unit="sample", unit_scale=True, dynamic_ncols=True, desc=desc)
        self._last = time.perf_counter()

    def log(self, step: int, metrics: dict[str, Any]) -> dict[str, Any]:
        now = time.perf_counter()
        elapsed = max(now - self._last, 1e-9)
        row = {"step": step, **metrics, "samples_per_s": self.samples_per_step / elapsed}
        if isinstance(metrics.get("tokens"), (int, float)):
            row["tokens_per_s"] = metrics["tokens"] / elapsed
        self._last = now
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        if self.writer is not None:
            for k, v in row.items():
                if k != "step" and isinstance(v, (int, float)):
                    self.writer.add_scalar(f"train/{k}", v, step)
        if self.bar is not None:
            self.bar.update(self.samples_per_step)
            shown = {_SHORT.get(k, k): f"{row[k]:.3f}" if isinstance(row[k], float) else row[k]
                     for k in self.postfix if isinstance(row.get(k), (int, float))}
            self.bar.set_postfix(shown, refresh=False)
        return row

    def close(self) -> None:
        self.file.close()
        if self.writer is not None:
            self.writer.close()
        if self.bar is not None:
            self.bar.close()
