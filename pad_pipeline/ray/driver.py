"""The driver of `pad annotate`: check the models, plan, start or join Ray, start the annotator actors
(one per GPU), then hand shards to shard workers (CPU actors) that feed them (`dispatch.py`).

Only per-shard state lives here (the driver's memory does not grow with the corpus). Shards already
committed are skipped, so rerunning the same command resumes. Before anything is written, OUT is checked
(`dataset.out_folder`: new, empty or a PAD build) and its lease taken (`dataset.lease`: one writer per
build; a second run on the same OUT is refused, naming the holder); the lease is given back at the end.
Model files are checked before the plan is written (`annotate/models/checks.py`); errors that only the actors
can find (a corrupt checkpoint) come back as one line, after which the build, having no committed shard, can
be re-planned. A local Ray instance that the driver starts is also shut down by it, on success, error or
Ctrl-C alike: leaving it to the interpreter's exit races Ray's own threads (a segfault after an interrupt).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Iterator, TextIO

import ray

from pad_pipeline.annotate.config import AnnotateConfig
from pad_pipeline.annotate.models.checks import check_models
from pad_pipeline.annotate.plan import check_output_folder, make_or_resume_plan
from pad_pipeline.core import storage
from pad_pipeline.core.config import dump_resolved
from pad_pipeline.core.errors import PadError
from pad_pipeline.core.ranges import parse_ranges, select
from pad_pipeline.dataset.layout import BuildLayout
from pad_pipeline.dataset.lease import BuildLease
from pad_pipeline.dataset.out_folder import check_out_folder
from pad_pipeline.dataset.reader import committed_records
from pad_pipeline.dataset.records import Plan
from pad_pipeline.ray.dispatch import drive
from pad_pipeline.ray.progress import AnnotateSummary, Progress
from pad_pipeline.ray.startup import kill_quietly, placement_problem, start_annotators

__all__ = ["AnnotateSummary", "annotator_count", "check_local_fit", "run_annotate", "start_ray"]


def _joins_cluster(address: str | None) -> bool:
    return bool(address or os.environ.get("RAY_ADDRESS"))


def _ask_for_token_auth() -> None:
    """RAY_AUTH_MODE=token for a local instance, unless the user chose a mode. Ray reads its config once,
    at import, so the cached copy is refreshed, as Ray itself does when it turns token auth on."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    try:
        from ray._raylet import Config  # type: ignore[attr-defined]
    except ImportError:  # another Ray: keep its default (and its warning) rather than a half-set mode
        return
    os.environ["RAY_AUTH_MODE"] = "token"
    Config.initialize("")


def start_ray(cfg: AnnotateConfig, address: str | None, stream: TextIO = sys.stderr) -> bool:
    """Join `address` (or $RAY_ADDRESS, as set by `ray job submit`), else start a local instance.
    True when this call started Ray (the caller then shuts it down).

    A local instance keeps Ray's default token authentication, asked for explicitly (RAY_AUTH_MODE=token
    unless the user set a mode), which Ray then does without its start-up warning; a cluster's own
    setting is left alone."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    runtime_env = {"env_vars": {"TOKENIZERS_PARALLELISM": "false"}}
    try:
        with deferred_interrupt():  # Ctrl-C inside ray.init orphans its core worker: a segfault at exit
            if address:
                print(f"[pad] joining Ray at {address} ...", file=stream, flush=True)
                ray.init(address=address, runtime_env=runtime_env, log_to_driver=True)
            else:
                print("[pad] starting a local Ray instance ...", file=stream, flush=True)
                _ask_for_token_auth()
                # "local": a new instance even when a `ray start` cluster is running here (address=None would join it)
                ray.init(address="local", num_cpus=cfg.runner.num_cpus or os.cpu_count(), num_gpus=cfg.runner.num_gpus,
                         include_dashboard=False, runtime_env=runtime_env, log_to_driver=True)
    except BaseException:  # interrupted (raised once ray.init returned) or failed: stop what it started
        stop_ray()
        raise
    return True


def stop_ray() -> None:
    with deferred_interrupt():
        ray.shutdown()


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold SIGINT back until the block is done, then raise it as KeyboardInterrupt: for Ray's start and
    stop, which an exception in the middle leaves half-done (its threads then crash the exit)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    interrupted: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted:
        raise KeyboardInterrupt


def annotator_count(cfg: AnnotateConfig) -> tuple[int, bool]:
    """How many annotator actors, and whether they take GPUs: one per GPU when the cluster has some."""
    gpus = float(ray.cluster_resources().get("GPU", 0))
    use_gpus = gpus > 0 and cfg.runner.gpus_per_annotator > 0
    if cfg.runner.annotators:
        return cfg.runner.annotators, use_gpus
    return (max(1, int(gpus // cfg.runner.gpus_per_annotator)) if use_gpus else 1), use_gpus


def check_local_fit(cfg: AnnotateConfig, n_annotators: int, use_gpus: bool = False) -> None:
    """On a local instance (no autoscaler), refuse a runner that could never place its annotators with
    one shard worker beside them (further shard workers that do not fit simply never start)."""
    total = ray.cluster_resources()
    cpus, gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
    if use_gpus and n_annotators * cfg.runner.gpus_per_annotator > gpus + 1e-9:
        raise PadError(placement_problem(cfg, use_gpus, n_annotators))
    needed = n_annotators * cfg.runner.cpus_per_annotator + cfg.runner.cpus_per_shard_worker
    if needed > cpus:
        raise PadError(f"runner: {n_annotators} annotator(s) x {cfg.runner.cpus_per_annotator} CPU + one shard "
                       f"worker ({cfg.runner.cpus_per_shard_worker} CPU) need {needed:g} CPUs, this Ray instance "
                       f"has {cpus:g}; lower runner.annotators or runner.cpus_per_annotator, or raise "
                       "runner.num_cpus")


def _prepare(cfg: AnnotateConfig, out: str, shards: str | None, redo: str | None, stream: TextIO
             ) -> tuple[Plan, list[int], int]:
    """Check the models, plan (or resume), drop `redo`'s records: (plan, shards to do, selected count).
    `redo="all"` names every shard of the plan."""
    chosen = parse_ranges(shards) if shards else None
    again = parse_ranges(redo, "--redo") if redo and redo != "all" else []
    check_models(cfg.models)  # before anything is written: a missing checkpoint fails in a second

    def check_selection(plan: Plan) -> None:  # before the plan or anything else is written
        if chosen is not None:
            select(chosen, plan.num_shards)
        select(again, plan.num_shards, "--redo")

    plan = make_or_resume_plan(cfg, out, validate=check_selection, stream=stream)
    layout = BuildLayout(out)
    dump_resolved(cfg.model_copy(update={"output": cfg.output.model_copy(update={"path": out})}), layout.config)
    for i in range(plan.num_shards) if redo == "all" else select(again, plan.num_shards, "--redo"):
        storage.remove(layout.record(i))
    selected = select(chosen, plan.num_shards) if chosen is not None else list(range(plan.num_shards))
    done = committed_records(out)
    return plan, [i for i in selected if i not in done], len(selected)


def run_annotate(cfg: AnnotateConfig, out: str | None = None, shards: str | None = None,
                 address: str | None = None, stream: TextIO | None = None, redo: str | None = None
                 ) -> AnnotateSummary:
    """Plan (or resume) the build at `out` and annotate its selected shards that are not committed.

    `shards` restricts the run to a selection (`0,3-5`); `redo` names committed shards to build again
    (e.g. ones `pad verify` found damaged): their records are removed first, so they are redone.
    """
    started, stream = time.time(), stream or sys.stderr  # resolved per call (a redirected stderr is used)
    out = out or cfg.output.path
    check_output_folder(out)
    check_out_folder(out, redo_all=redo == "all")
    lease = BuildLease(out, stream)
    with lease:
        summary = _run_leased(cfg, out, shards, address, stream, redo, started)
    if lease.lost:
        raise PadError(f"{out}: this run lost its lease to another writer during the build; run `pad verify {out}`"
                       " and rerun the same command")
    return summary


def _run_leased(cfg: AnnotateConfig, out: str, shards: str | None, address: str | None, stream: TextIO,
                redo: str | None, started: float) -> AnnotateSummary:
    plan, todo, selected = _prepare(cfg, out, shards, redo, stream)
    summary = AnnotateSummary(out=out, planned=selected, skipped=selected - len(todo), started=started)
    print(f"[pad] {out}: {plan.num_items} images in {plan.num_shards} shards; "
          f"{summary.skipped} of {selected} selected already committed, {len(todo)} to do", file=stream, flush=True)
    if todo:
        for i in todo:
            storage.remove(BuildLayout(out).error(i))
        started_ray = start_ray(cfg, address, stream)
        try:
            _annotate(cfg, plan, todo, summary, address, stream)
        finally:
            if started_ray:
                stop_ray()
    summary.seconds = time.time() - summary.started
    return summary


def _annotate(cfg: AnnotateConfig, plan: Plan, todo: list[int], summary: AnnotateSummary,
              address: str | None, stream: TextIO) -> None:
    n_annotators, use_gpus = annotator_count(cfg)
    if not _joins_cluster(address):
        check_local_fit(cfg, n_annotators, use_gpus)
    actors, provenance = start_annotators(cfg, n_annotators, use_gpus, stream)
    try:
        drive(cfg, plan, todo, actors, {"models": provenance}, summary, Progress(len(todo), stream))
    finally:
        kill_quietly(actors)
