"""Starting the annotator actors: placed by Ray within a deadline, then their models loaded, or one line.

Two phases, each reported: placement (`ready()` answers once Ray found the resources and started the
process) is bounded by `runner.placement_timeout_s`, so a cluster that cannot hold the annotators says
which resources it lacks within a minute instead of waiting silently (when the resources are free, the
actors are only slow to start, e.g. a runtime env installing, and the wait goes on up to
`runner.stall_timeout_s`); model loading (`setup()`, no deadline, reported every minute) raises the
first actor's error as one line. On any failure or interrupt every actor is killed before the error
goes up.
"""

from __future__ import annotations

import time
from typing import Any, TextIO

import ray

from pad_pipeline.annotate.config import AnnotateConfig
from pad_pipeline.core.errors import PadError
from pad_pipeline.ray.actor_errors import death_summary, root_message
from pad_pipeline.ray.annotator_actor import annotator_resources, create_actors


def kill_quietly(actors: list[Any]) -> None:
    for actor in actors:
        try:
            ray.kill(actor, no_restart=True)
        except Exception:  # already gone, or Ray is shutting down: nothing left to stop
            pass


def placement_problem(cfg: AnnotateConfig, use_gpus: bool, count: int, placed: int | None = None,
                      waited: float = 0.0) -> str:
    """The one line for annotators that cannot be placed (`placed` of them were, after `waited` s; None:
    checked before trying): what they ask for, what the cluster has."""
    need = annotator_resources(cfg, use_gpus)
    free, total = ray.available_resources(), ray.cluster_resources()
    asked = " + ".join(f"{need[k]:g} {k}" for k in ("GPU", "CPU") if need[k])
    tried = "" if placed is None else f", {placed} placed after {waited:.0f}s"
    more = "declare more with runner.num_gpus / runner.num_cpus" if placed is None else \
        "add nodes, or raise runner.placement_timeout_s (an autoscaler still adding nodes)"
    return (f"runner: {count} annotator(s) x {asked or 'nothing'} requested{tried}; "
            f"the cluster has {free.get('GPU', 0):g} GPU / {free.get('CPU', 0):g} CPU free "
            f"({total.get('GPU', 0):g} GPU / {total.get('CPU', 0):g} CPU in total); lower runner.annotators, "
            f"runner.gpus_per_annotator or runner.cpus_per_annotator, or {more}")


def _fits_now(cfg: AnnotateConfig, use_gpus: bool, pending: int) -> bool:
    need, free = annotator_resources(cfg, use_gpus), ray.available_resources()
    return all(free.get(k, 0.0) + 1e-9 >= pending * v for k, v in need.items() if v)


def wait_placed(cfg: AnnotateConfig, actors: list[Any], use_gpus: bool, stream: TextIO) -> None:
    """Until every actor answers `ready()`; a `PadError` naming the resources when the cluster lacks them."""
    t0, warned = time.time(), False
    pending = [a.ready.remote() for a in actors]
    while pending:
        ready, pending = ray.wait(pending, num_returns=len(pending), timeout=1.0)
        for ref in ready:
            try:
                ray.get(ref)
            except ray.exceptions.RayActorError as e:  # e.g. its runtime env could not be set up
                raise PadError(f"annotator actor could not start: {death_summary(e)}") from None
        waited = time.time() - t0
        if not pending or waited < cfg.runner.placement_timeout_s:
            continue
        if not _fits_now(cfg, use_gpus, len(pending)) or waited > cfg.runner.stall_timeout_s:
            raise PadError(placement_problem(cfg, use_gpus, len(actors), len(actors) - len(pending), waited))
        if not warned:
            warned = True
            print(f"[pad] {len(pending)} annotator(s) not started after {waited:.0f}s although the cluster has "
                  "their resources free (a runtime env may be installing); still waiting", file=stream, flush=True)


def load_models(actors: list[Any], stream: TextIO, report_every_s: float = 60.0) -> dict[str, Any]:
    """`setup()` on every actor; the provenance of the first. The first failure is a one-line `PadError`.
    No deadline (large checkpoints, hub downloads): a line every `report_every_s` says it is still going."""
    pending = [a.setup.remote() for a in actors]
    provenance: dict[str, Any] | None = None
    t0 = time.time()
    while pending:
        ready, pending = ray.wait(pending, num_returns=1, timeout=report_every_s)
        if not ready:
            print(f"[pad] still loading models on {len(pending)} annotator(s) ({time.time() - t0:.0f}s)",
                  file=stream, flush=True)
            continue
        try:
            result = ray.get(ready[0])
        except ray.exceptions.RayTaskError as e:
            raise PadError(root_message(e)) from None
        except ray.exceptions.RayActorError as e:  # it crashed while loading, as often as Ray restarts it
            raise PadError(f"annotator actor died while loading the models: {death_summary(e)}") from None
        provenance = provenance or result
    return provenance or {}


def start_annotators(cfg: AnnotateConfig, count: int, use_gpus: bool, stream: TextIO
                     ) -> tuple[list[Any], dict[str, Any]]:
    """`count` annotator actors, placed and with their models loaded; (actors, model provenance)."""
    kind = "GPU" if use_gpus else "CPU"
    actors = create_actors(cfg, count, use_gpus)
    try:
        t0 = time.time()
        wait_placed(cfg, actors, use_gpus, stream)
        print(f"[pad] {count} annotator actor(s) on {kind} placed ({time.time() - t0:.1f}s); loading models ...",
              file=stream, flush=True)
        t0 = time.time()
        provenance = load_models(actors, stream)
    except BaseException:  # an error or Ctrl-C: no actor may outlive the attempt
        kill_quietly(actors)
        raise
    print(f"[pad] models loaded ({time.time() - t0:.1f}s): "
          + ", ".join(f"{k}={v.get('checkpoint', v.get('name'))}" for k, v in provenance.items()),
          file=stream, flush=True)
    return actors, provenance
