"""Shard tasks on Ray: one task per shard, feeding an annotator actor with pipelined batches.

This module imports no torch or model code: a shard task only fetches, decodes, encodes and writes, so
its worker starts fast and stays small.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Iterable, Iterator

import numpy as np
import ray

from pad_pipeline.annotate_config import AnnotateConfig
from pad_pipeline.annotation import ImageAnnotation
from pad_pipeline.plan import Plan


def pipelined(actor: Any, batches: Iterable[list[np.ndarray]], depth: int = 2) -> Iterator[list[ImageAnnotation]]:
    """Send batches to `actor` keeping `depth` in flight; yield results in order."""
    in_flight: deque = deque()
    for batch in batches:
        in_flight.append(actor.annotate.remote(batch))
        if len(in_flight) >= depth:
            yield ray.get(in_flight.popleft())
    while in_flight:
        yield ray.get(in_flight.popleft())


def _shard_task(cfg_data: dict[str, Any], plan: Plan, index: int, actor: Any, info: dict[str, Any]) -> dict[str, Any]:
    from pad_pipeline.shard_worker import process_shard

    cfg = AnnotateConfig.model_validate(cfg_data)
    return process_shard(cfg, plan, index, lambda batches: pipelined(actor, batches), info)


def submit_shard(cfg: AnnotateConfig, plan: Plan, index: int, actor: Any, info: dict[str, Any]) -> Any:
    task = ray.remote(_shard_task).options(num_cpus=cfg.runner.cpus_per_shard_task, max_retries=0)
    return task.remote(cfg.model_dump(mode="json"), plan, index, actor, info)
