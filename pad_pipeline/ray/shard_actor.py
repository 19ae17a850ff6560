"""Shard workers on Ray: long-lived CPU actors, each running one shard task at a time.

A shard task fetches, decodes, annotates (through the annotator actors) and writes one shard. It runs on
a long-lived actor rather than as a plain Ray task because Ray kills idle task workers above its
per-node soft limit and starts new ones for the next task: on a small node each restart re-imports
numpy, PIL, pyarrow and pydantic, which cost more CPU than the shard's own decode and encode
(measured in bench/annotate.py). An actor also keeps the parsed config and plan between shards.

Each shard worker is placed (softly) on the node of one annotator and sends its batches round-robin
to the annotators of that node: images stay on their node, and the batches of the last shards still
spread over every local annotator instead of waiting on one.

This module imports no torch or model code, so a shard worker starts fast and stays small.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from pad_pipeline.annotate.config import AnnotateConfig
from pad_pipeline.annotate.results import ImageAnnotation
from pad_pipeline.annotate.shard_task import ShardResult, process_shard, warm_up
from pad_pipeline.core.hooks import read_hooks
from pad_pipeline.dataset.records import Plan
from pad_pipeline.ray.actor_errors import death_summary


def pipelined(next_annotator: Callable[[], Any], batches: Iterable[list[np.ndarray]], depth: int = 2
              ) -> Iterator[list[ImageAnnotation]]:
    """Send each batch to `next_annotator()`, keeping `depth` in flight; yield the results in order."""
    in_flight: deque = deque()
    for batch in batches:
        in_flight.append(next_annotator().annotate.remote(batch))
        if len(in_flight) >= depth:
            yield ray.get(in_flight.popleft())
    while in_flight:
        yield ray.get(in_flight.popleft())


class ShardWorker:
    """Actor body: runs shard tasks of one plan against a group of annotator actors."""

    def __init__(self, cfg_data: dict[str, Any], plan: Plan, annotators: list[Any], pause_before_commit_s: float = 0.0):
        self.pause_before_commit_s = pause_before_commit_s  # a test hook, read by the driver
        self.cfg = AnnotateConfig.model_validate(cfg_data)
        self.plan = plan
        self.annotators = annotators
        self.batches_sent = 0
        warm_up(self.cfg)

    def next_annotator(self) -> Any:
        """Round-robin that carries on across shards, so every annotator gets the same share of batches
        whatever the number of batches per shard."""
        annotator = self.annotators[self.batches_sent % len(self.annotators)]
        self.batches_sent += 1
        return annotator

    def ready(self) -> bool:
        return True

    def process(self, index: int, info: dict[str, Any]) -> ShardResult:
        # Two batches in flight per shard worker: with several workers per annotator, its queue never
        # runs dry, and the object store holds a few batches per annotator, not whole shards.
        return process_shard(self.cfg, self.plan, index,
                             lambda batches: pipelined(self.next_annotator, batches, depth=2), info,
                             self.pause_before_commit_s)


def local_groups(annotators: list[Any], node_ids: list[str]) -> list[list[Any]]:
    """For each annotator, the annotators on its node (itself first)."""
    groups = []
    for i, node in enumerate(node_ids):
        others = [a for j, a in enumerate(annotators) if node_ids[j] == node and j != i]
        groups.append([annotators[i], *others])
    return groups


class ShardWorkerFactory:
    """Creates shard workers next to their annotators, and replacements for dead ones."""

    def __init__(self, cfg: AnnotateConfig, plan: Plan, annotators: list[Any], node_ids: list[str]):
        self.cfg_data = cfg.model_dump(mode="json")
        self.pause_before_commit_s = read_hooks().pause_before_commit_s
        self.plan = plan
        self.groups = local_groups(annotators, node_ids)
        self.node_ids = node_ids
        self.options = {"num_cpus": cfg.runner.cpus_per_shard_worker, "max_restarts": 0}
        self.per_annotator = cfg.runner.shard_workers_per_annotator

    def create(self, slot: int) -> Any:
        """The shard worker for `slot`; slots alternate over annotators, so a partial pool still spreads."""
        a = slot % len(self.groups)
        strategy = NodeAffinitySchedulingStrategy(node_id=self.node_ids[a], soft=True)
        return ray.remote(ShardWorker).options(scheduling_strategy=strategy, **self.options).remote(
            self.cfg_data, self.plan, self.groups[a], self.pause_before_commit_s)

    @property
    def slots(self) -> int:
        return len(self.groups) * self.per_annotator


class ShardWorkerPool:
    """The driver's view of the shard workers: which are starting, idle or busy; dead ones are replaced.

    Workers join the idle set as they come up, so a cluster that can place only some of them (a small
    node, an autoscaler still adding CPUs) starts working with those.
    """

    def __init__(self, factory: ShardWorkerFactory, max_replacements: int):
        self.factory = factory
        self.replacements_left = max_replacements
        self.workers: dict[int, Any] = {}
        self.starting: dict[Any, int] = {}
        self.idle: deque[int] = deque()
        self.last_error = ""
        for slot in range(factory.slots):
            self._start(slot)

    def _start(self, slot: int) -> None:
        worker = self.factory.create(slot)
        self.workers[slot] = worker
        self.starting[worker.ready.remote()] = slot

    def poll_started(self) -> None:
        if not self.starting:
            return
        ready, _ = ray.wait(list(self.starting), num_returns=len(self.starting), timeout=0)
        for ref in ready:
            slot = self.starting.pop(ref)
            try:
                ray.get(ref)
            except ray.exceptions.RayActorError as e:  # its node went away, or its set-up failed
                self.last_error = f"shard worker could not start: {death_summary(e)}"
                self.replace(slot)
                continue
            self.idle.append(slot)

    def wait_started(self, settle_s: float = 2.0, first_timeout_s: float = 120.0) -> None:
        """Wait for the workers that can start now, so their start-up does not compete with the first
        shards: until none is starting, or `settle_s` passed without another coming up (the rest may
        never fit, or wait for an autoscaler: they join later)."""
        t0 = last = time.time()
        while self.starting:
            before = len(self.idle)
            self.poll_started()
            now = time.time()
            if len(self.idle) > before:
                last = now
            if (self.idle and now - last > settle_s) or (not self.idle and now - t0 > first_timeout_s):
                return
            time.sleep(0.05)

    def replace(self, slot: int) -> None:
        """Kill the worker of `slot` and start a new one (bounded, so a broken worker cannot loop)."""
        ray.kill(self.workers[slot], no_restart=True)
        if self.replacements_left <= 0:
            del self.workers[slot]
            return
        self.replacements_left -= 1
        self._start(slot)

    def release(self, slot: int, died: bool, error: str = "") -> None:
        """Back to idle after a shard task; a worker that `died` (its last task's `error`) is replaced."""
        if died:
            self.last_error = error or self.last_error
            self.replace(slot)
        else:
            self.idle.append(slot)

    def shutdown(self) -> None:
        """Kill every worker: a shard task cut short leaves at most a tar without its record."""
        for worker in self.workers.values():
            ray.kill(worker, no_restart=True)
        self.workers.clear()
        self.starting.clear()
        self.idle.clear()
