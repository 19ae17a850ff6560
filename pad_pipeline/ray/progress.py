"""What `pad annotate` counts and prints while it runs: the run's tally and its progress line.

`AnnotateSummary` is the driver's per-shard tally (it never grows with the corpus); `started` is taken
before planning, so the "done in" figure covers planning, Ray start-up and model loading too.
`Progress` prints one line at most every `interval` seconds while shards complete.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass
class AnnotateSummary:
    out: str
    planned: int
    skipped: int = 0
    committed: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    images: int = 0
    samples: int = 0
    regions: int = 0
    failures: int = 0
    task_cpu_seconds: float = 0.0
    actor_stats: list[dict[str, Any]] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    seconds: float = 0.0
    drive_seconds: float = 0.0  # first shard submitted -> last shard done (no Ray start, no model load)

    @property
    def ok(self) -> bool:
        return not self.failed

    def add(self, record: Any, task_cpu_seconds: float, index: int) -> None:
        """Count one committed shard (its `ShardRecord`)."""
        self.committed.append(index)
        self.images += record.num_inputs or 0
        self.samples += record.num_samples
        self.regions += record.num_regions
        self.failures += record.num_failures
        self.task_cpu_seconds += task_cpu_seconds


class Progress:
    def __init__(self, total: int, stream: TextIO, interval: float = 2.0):
        self.total, self.stream, self.interval = total, stream, interval
        self.t0 = time.time()
        self.last_print = 0.0
        self.last_line = ""

    def say(self, line: str) -> None:
        print(f"[pad] {line}", file=self.stream, flush=True)

    def update(self, s: AnnotateSummary, force: bool = False) -> None:
        now = time.time()
        if not force and now - self.last_print < self.interval:
            return
        self.last_print = now
        dt = max(now - self.t0, 1e-9)
        line = (f"[pad] shards {len(s.committed)}/{self.total} committed, {len(s.failed)} failed | "
                f"{s.images} images ({s.images / dt:.1f}/s) | {s.samples} samples, {s.regions} regions, "
                f"{s.failures} image failures")
        if line != self.last_line or not force:
            print(f"{line} | {dt:.0f}s", file=self.stream, flush=True)
        self.last_line = line
