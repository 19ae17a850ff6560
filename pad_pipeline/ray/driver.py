"""The driver of `pad annotate`: plan, start or join Ray, hand shards to shard workers (CPU actors)
that feed the annotator actors (one per GPU).

Only per-shard state lives here (the driver's memory does not grow with the corpus). Shards already
committed are skipped, so rerunning the same command resumes. A shard task that fails is retried up to
`runner.shard_retries` times; one that still fails gets `pad-NNNNNN.error.json` (not a commit marker)
and is named in the summary, and the command exits non-zero. A no-progress watchdog fails the job
when neither a shard nor any actor made progress for `runner.stall_timeout_s`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import ray

from pad_pipeline.annotate.config import AnnotateConfig
from pad_pipeline.annotate.plan import make_or_resume_plan
from pad_pipeline.core.ranges import parse_ranges, select
from pad_pipeline.core import storage
from pad_pipeline.core.config import dump_resolved
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.layout import BuildLayout
from pad_pipeline.dataset.reader import committed_records
from pad_pipeline.dataset.records import Plan
from pad_pipeline.ray.annotator_actor import create_actors
from pad_pipeline.ray.shard_actor import ShardWorkerFactory, ShardWorkerPool


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


def start_ray(cfg: AnnotateConfig, address: str | None) -> None:
    """Join `address` (or $RAY_ADDRESS, as set by `ray job submit`), else start a local instance."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    runtime_env = {"env_vars": {"TOKENIZERS_PARALLELISM": "false"}}
    if address:
        ray.init(address=address, runtime_env=runtime_env, log_to_driver=True)
    else:
        ray.init(num_cpus=cfg.runner.num_cpus or os.cpu_count(), num_gpus=cfg.runner.num_gpus,
                 include_dashboard=False, runtime_env=runtime_env, log_to_driver=True)


def annotator_count(cfg: AnnotateConfig) -> tuple[int, bool]:
    """How many annotator actors, and whether they take GPUs: one per GPU when the cluster has some."""
    gpus = float(ray.cluster_resources().get("GPU", 0))
    use_gpus = gpus > 0 and cfg.runner.gpus_per_annotator > 0
    if cfg.runner.annotators:
        return cfg.runner.annotators, use_gpus
    return (max(1, int(gpus // cfg.runner.gpus_per_annotator)) if use_gpus else 1), use_gpus


def check_local_fit(cfg: AnnotateConfig, n_annotators: int) -> None:
    """On a local instance, refuse a runner that could never place one shard worker next to its actors
    (further shard workers that do not fit simply never start; the ones that do carry the build)."""
    cpus = float(ray.cluster_resources().get("CPU", 0))
    needed = n_annotators * cfg.runner.cpus_per_annotator + cfg.runner.cpus_per_shard_worker
    if needed > cpus:
        raise PadError(f"runner: {n_annotators} annotator(s) x {cfg.runner.cpus_per_annotator} CPU + one shard "
                       f"worker ({cfg.runner.cpus_per_shard_worker} CPU) need {needed:g} CPUs, this Ray instance "
                       f"has {cpus:g}; lower runner.annotators or runner.cpus_per_annotator, or raise "
                       "runner.num_cpus")


class Progress:
    def __init__(self, total: int, stream: TextIO, interval: float = 2.0):
        self.total, self.stream, self.interval = total, stream, interval
        self.t0 = time.time()
        self.last_print = 0.0
        self.last_line = ""

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


DISK_FULL_MARKERS = ("No space left on device", "ENOSPC", "Errno 28", "Disk quota exceeded")


def _write_error(out: str, index: int, error: str, attempts: int) -> None:
    try:
        storage.write_bytes(BuildLayout(out).error(index),
                            json.dumps({"shard": index, "attempts": attempts, "error": error}, indent=1).encode())
    except OSError:  # the output may be what failed; the summary still names the shard
        pass


def _root_message(e: BaseException) -> str:
    """The innermost error line of a Ray-wrapped exception (for one-line user errors)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for line in reversed(lines):
        if "Error" in line or "error" in line:
            return line[:400]
    return (lines[-1] if lines else type(e).__name__)[:400]


def _actor_progress(actors: list[Any]) -> float:
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


def run_annotate(cfg: AnnotateConfig, out: str | None = None, shards: str | None = None,
                 address: str | None = None, stream: TextIO = sys.stderr, redo: str | None = None
                 ) -> AnnotateSummary:
    """Plan (or resume) the build at `out` and annotate its selected shards that are not committed.

    `shards` restricts the run to a selection (`0,3-5`); `redo` names committed shards to build again
    (e.g. ones `pad verify` found damaged): their records are removed first, so they are redone.
    """
    started = time.time()
    out = out or cfg.output.path
    chosen = parse_ranges(shards) if shards else None
    again = parse_ranges(redo, "--redo") if redo else []

    def check_selection(plan: Plan) -> None:  # before the plan or anything else is written
        if chosen is not None:
            select(chosen, plan.num_shards)
        select(again, plan.num_shards, "--redo")

    plan = make_or_resume_plan(cfg, out, validate=check_selection, stream=stream)
    layout = BuildLayout(out)
    dump_resolved(cfg, layout.config)
    for i in select(again, plan.num_shards, "--redo"):
        storage.remove(layout.record(i))
    selected = select(chosen, plan.num_shards) if chosen is not None else list(range(plan.num_shards))
    done = committed_records(out)
    todo = [i for i in selected if i not in done]
    summary = AnnotateSummary(out=out, planned=len(selected), skipped=len(selected) - len(todo), started=started)
    print(f"[pad] {out}: {plan.num_items} images in {plan.num_shards} shards; "
          f"{summary.skipped} of {len(selected)} selected already committed, {len(todo)} to do", file=stream)
    if not todo:
        summary.seconds = time.time() - started
        return summary
    for i in todo:
        storage.remove(layout.error(i))
    start_ray(cfg, address)
    n_annotators, use_gpus = annotator_count(cfg)
    if not (address or os.environ.get("RAY_ADDRESS")):
        check_local_fit(cfg, n_annotators)
    actors = create_actors(cfg, n_annotators, use_gpus)
    try:
        provenance = ray.get([a.provenance.remote() for a in actors])[0]  # every actor loaded and warm
    except Exception as e:  # the chain could not be built (bad checkpoint, missing file...)
        for actor in actors:
            ray.kill(actor)
        raise PadError(f"annotator actor failed to start: {_root_message(e)}") from None
    print(f"[pad] {n_annotators} annotator actor(s) on {'GPU' if use_gpus else 'CPU'}; models: "
          + ", ".join(f"{k}={v.get('checkpoint', v.get('name'))}" for k, v in provenance.items()), file=stream)
    try:
        _drive(cfg, plan, todo, actors, {"models": provenance}, summary, Progress(len(todo), stream))
    finally:
        for actor in actors:
            ray.kill(actor)
    summary.seconds = time.time() - summary.started
    return summary


def _drive(cfg: AnnotateConfig, plan: Plan, todo: list[int], actors: list[Any], info: dict[str, Any],
           summary: AnnotateSummary, progress: Progress) -> None:
    node_ids = [p["node_id"] for p in ray.get([a.placement.remote() for a in actors])]
    factory = ShardWorkerFactory(cfg, plan, actors, node_ids)
    pool = ShardWorkerPool(factory, max_replacements=factory.slots * (cfg.runner.shard_retries + 1))
    try:
        pool.wait_started()
        _dispatch(cfg, plan, todo, pool, actors, info, summary, progress)
    finally:
        pool.shutdown()
    summary.actor_stats = ray.get([a.stats.remote() for a in actors])


def _dispatch(cfg: AnnotateConfig, plan: Plan, todo: list[int], pool: ShardWorkerPool, actors: list[Any],
              info: dict[str, Any], summary: AnnotateSummary, progress: Progress) -> None:
    """Hand shards to idle shard workers until every shard is committed or recorded as failed."""
    t_drive = 0.0  # set when the first shard is handed out: shard-worker start-up is set-up, like model loading
    queue = list(todo)
    attempts: dict[int, int] = {}
    running: dict[Any, tuple[int, int]] = {}  # shard task -> (shard index, worker slot)
    last_progress = time.time()
    while queue or running:
        pool.poll_started()
        while queue and pool.idle:
            slot, index = pool.idle.popleft(), queue.pop(0)
            t_drive = t_drive or time.time()
            attempts[index] = attempts.get(index, 0) + 1
            running[pool.workers[slot].process.remote(index, info)] = (index, slot)
        if not running and not pool.starting and not pool.workers:
            raise PadError(f"every shard worker died and none could be replaced (last error: {pool.last_error}); "
                           f"shards {sorted(queue)} were not run. Fix that, then rerun to resume")
        ready, _ = ray.wait(list(running) + list(pool.starting), num_returns=1, timeout=2.0)
        for ref in ready:
            if ref not in running:
                continue  # a shard worker came up; it joins the pool at the top of the loop
            index, slot = running.pop(ref)
            last_progress = time.time()
            try:
                result = ray.get(ref)
            except Exception as e:  # task error, worker or node lost: retry, then record
                pool.release(slot, died=isinstance(e, ray.exceptions.RayActorError))
                error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"[:500]
                if any(marker in str(e) for marker in DISK_FULL_MARKERS):
                    raise PadError(f"{plan.out}: output storage is full (shard {index}: {error}); "
                                   "committed shards are intact: free space and rerun to resume") from None
                if attempts[index] <= cfg.runner.shard_retries:
                    print(f"[pad] shard {index} failed (attempt {attempts[index]}): {error}; retrying",
                          file=progress.stream, flush=True)
                    queue.append(index)
                else:
                    summary.failed[index] = error
                    _write_error(plan.out, index, error, attempts[index])
                continue
            pool.release(slot, died=False)
            summary.committed.append(index)
            record = result.record
            summary.images += record.num_inputs or 0
            summary.samples += record.num_samples
            summary.regions += record.num_regions
            summary.failures += record.num_failures
            summary.task_cpu_seconds += result.task_cpu_seconds
        if not ready and time.time() - last_progress > min(30.0, cfg.runner.stall_timeout_s):
            last_progress = max(last_progress, _actor_progress(actors))
            if time.time() - last_progress > cfg.runner.stall_timeout_s:
                if not running:
                    raise PadError(f"no progress for {cfg.runner.stall_timeout_s:.0f}s: no shard worker could be "
                                   "placed (each needs runner.cpus_per_shard_worker="
                                   f"{cfg.runner.cpus_per_shard_worker:g} CPU next to the annotators); lower it or "
                                   "add CPUs, then rerun")
                raise PadError(f"no progress for {cfg.runner.stall_timeout_s:.0f}s (runner.stall_timeout_s): "
                               f"a stage is hung; shards {sorted(i for i, _ in running.values())} were running. "
                               "Rerun to resume from the committed shards")
        progress.update(summary)
    progress.update(summary, force=True)
    summary.drive_seconds = time.time() - t_drive
