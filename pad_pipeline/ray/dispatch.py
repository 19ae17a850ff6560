"""The dispatch loop of `pad annotate`: shards to idle shard workers until each is committed or failed.

A shard task that fails is retried up to `runner.shard_retries` times; one that still fails gets
`pad-NNNNNN.error.json` (not a commit marker) and is named in the summary. A shard worker that died is
replaced; a shard that failed because an annotator actor is dead for good (Ray restarted it
`runner.actor_restarts` times) ends the run with one line naming that actor and how it last died. A full
output disk ends the run at once. A no-progress watchdog fails the job when neither a shard nor any
actor made progress for `runner.stall_timeout_s`.
"""

from __future__ import annotations

import json
import time
from typing import Any

import ray

from pad_pipeline.annotate.config import AnnotateConfig
from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.layout import BuildLayout
from pad_pipeline.dataset.records import Plan
from pad_pipeline.ray.actor_errors import death_parts, died_actor
from pad_pipeline.ray.progress import AnnotateSummary, Progress
from pad_pipeline.ray.shard_actor import ShardWorkerFactory, ShardWorkerPool

DISK_FULL_MARKERS = ("No space left on device", "ENOSPC", "Errno 28", "Disk quota exceeded")


def write_error(out: str, index: int, error: str, attempts: int) -> None:
    try:
        storage.write_bytes(BuildLayout(out).error(index),
                            json.dumps({"shard": index, "attempts": attempts, "error": error}, indent=1).encode())
    except OSError:  # the output may be what failed; the summary still names the shard
        pass


def task_error(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[-1] if text else ''}"[:500]


def actor_progress(actors: list[Any]) -> float:
    """Latest time any actor finished a batch (0 when none answers)."""
    refs = [a.stats.remote() for a in actors]
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=10)
    latest = 0.0
    for r in ready:
        try:
            latest = max(latest, ray.get(r)["last_progress"])
        except Exception:  # a restarting actor: no progress from it now
            pass
    return latest


def dead_annotator(actors: list[Any]) -> tuple[int, tuple[str, str]] | None:
    """(index, (which process, how it died)) of the first annotator actor dead for good, else None."""
    refs = [a.ready.remote() for a in actors]
    ray.wait(refs, num_returns=len(refs), timeout=10)
    for i, ref in enumerate(refs):
        try:
            ray.get(ref, timeout=0)
        except ray.exceptions.ActorDiedError as e:
            return i, death_parts(e)
        except Exception:  # restarting or slow to answer: not dead
            pass
    return None


def drive(cfg: AnnotateConfig, plan: Plan, todo: list[int], actors: list[Any], info: dict[str, Any],
          summary: AnnotateSummary, progress: Progress) -> None:
    """Start the shard workers next to the annotators and run every shard of `todo`."""
    node_ids = [p["node_id"] for p in ray.get([a.ready.remote() for a in actors])]
    factory = ShardWorkerFactory(cfg, plan, actors, node_ids)
    pool = ShardWorkerPool(factory, max_replacements=factory.slots * (cfg.runner.shard_retries + 1))
    try:
        pool.wait_started()
        Dispatch(cfg, plan, pool, actors, info, summary, progress).run(todo)
    finally:
        pool.shutdown()
    summary.actor_stats = ray.get([a.stats.remote() for a in actors])


class Dispatch:
    """One run of the loop: the queue, the running shard tasks, attempts and the watchdog's clock."""

    def __init__(self, cfg: AnnotateConfig, plan: Plan, pool: ShardWorkerPool, actors: list[Any],
                 info: dict[str, Any], summary: AnnotateSummary, progress: Progress):
        self.cfg, self.plan, self.pool, self.actors, self.info = cfg, plan, pool, actors, info
        self.summary, self.progress = summary, progress
        self.queue: list[int] = []
        self.attempts: dict[int, int] = {}
        self.running: dict[Any, tuple[int, int]] = {}  # shard task -> (shard index, worker slot)
        self.last_progress = time.time()

    def run(self, todo: list[int]) -> None:
        t_drive = 0.0  # set when the first shard is handed out: shard-worker start-up is set-up
        self.queue = list(todo)
        while self.queue or self.running:
            self.pool.poll_started()
            while self.queue and self.pool.idle:
                slot, index = self.pool.idle.popleft(), self.queue.pop(0)
                t_drive = t_drive or time.time()
                self.attempts[index] = self.attempts.get(index, 0) + 1
                self.running[self.pool.workers[slot].process.remote(index, self.info)] = (index, slot)
            if not self.running and not self.pool.starting and not self.pool.workers:
                raise PadError(f"every shard worker died and none could be replaced (last error: "
                               f"{self.pool.last_error or 'none reported'}); shards {sorted(self.queue)} were not "
                               "run. Fix that, then rerun to resume")
            ready, _ = ray.wait(list(self.running) + list(self.pool.starting), num_returns=1, timeout=2.0)
            for ref in ready:
                if ref in self.running:  # else a shard worker came up: it joins the pool at the top
                    self._finished(ref)
            if not ready:
                self._watchdog()
            self.progress.update(self.summary)
        self.progress.update(self.summary, force=True)
        self.summary.drive_seconds = time.time() - t_drive

    def _finished(self, ref: Any) -> None:
        index, slot = self.running.pop(ref)
        self.last_progress = time.time()
        try:
            result = ray.get(ref)
        except Exception as e:  # task error, worker or node lost: retry, then record
            self._failed(index, slot, e)
            return
        self.pool.release(slot, died=False)
        self.summary.add(result.record, result.task_cpu_seconds, index)

    def _failed(self, index: int, slot: int, e: Exception) -> None:
        error = task_error(e)
        # The shard worker itself died (not a task error it raised, such as a dead annotator's).
        worker_died = isinstance(e, ray.exceptions.RayActorError) and not isinstance(e, ray.exceptions.RayTaskError)
        self.pool.release(slot, died=worker_died, error=error)
        if any(marker in str(e) for marker in DISK_FULL_MARKERS):
            raise PadError(f"{self.plan.out}: output storage is full (shard {index}: {error}); "
                           "committed shards are intact: free space and rerun to resume") from None
        if died_actor(e) is not None and not worker_died:
            self._check_annotators(index)
        if self.attempts[index] <= self.cfg.runner.shard_retries:
            print(f"[pad] shard {index} failed (attempt {self.attempts[index]}): {error}; retrying",
                  file=self.progress.stream, flush=True)
            self.queue.append(index)
        else:
            self.summary.failed[index] = error
            write_error(self.plan.out, index, error, self.attempts[index])

    def _check_annotators(self, index: int) -> None:
        dead = dead_annotator(self.actors)
        if dead is None:
            return
        i, (where, why) = dead
        left = sorted({index, *self.queue, *(s for s, _ in self.running.values()), *self.summary.failed})
        restarts = self.cfg.runner.actor_restarts
        raise PadError(f"annotator actor {i} of {len(self.actors)} ({where or 'AnnotatorWorker'}) died "
                       f"{restarts + 1} time(s) (runner.actor_restarts={restarts}); last error: {why}; "
                       f"{len(self.summary.committed)} "
                       f"shard(s) committed, not done: {left}. Its log is on its "
                       "node under /tmp/ray/session_latest/logs; fix the cause, then rerun to resume") from None

    def _watchdog(self) -> None:
        timeout = self.cfg.runner.stall_timeout_s
        if time.time() - self.last_progress <= min(30.0, timeout):
            return
        self.last_progress = max(self.last_progress, actor_progress(self.actors))
        if time.time() - self.last_progress <= timeout:
            return
        if not self.running:
            raise PadError(f"no progress for {timeout:.0f}s: no shard worker could be placed (each needs "
                           f"runner.cpus_per_shard_worker={self.cfg.runner.cpus_per_shard_worker:g} CPU next to the "
                           "annotators); lower it or add CPUs, then rerun")
        raise PadError(f"no progress for {timeout:.0f}s (runner.stall_timeout_s): a stage is hung; shards "
                       f"{sorted(i for i, _ in self.running.values())} were running. Rerun to resume from the "
                       "committed shards")
