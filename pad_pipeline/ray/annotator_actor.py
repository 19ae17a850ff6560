"""The thin Ray adapter for the model chain: an annotator actor per GPU (or per CPU worker).

Stages and the `Annotator` know nothing of Ray; this module only places them. An actor holds the whole
model chain on its own device and serves batches from several shard workers (calls are serialised by a
lock, while `stats()` still answers so the driver's watchdog can see progress). Ray restarts a dead
actor (`max_restarts`) and retries the calls it was serving (`max_task_retries`).

torch and the models are imported inside the actor only: shard workers hold handles to these actors,
and unpickling a handle imports this module, which must stay light.
"""

from __future__ import annotations

import os
import random
import threading
import time
from typing import Any

import numpy as np
import ray

from pad_pipeline.annotate.config import AnnotateConfig, ModelsConfig
from pad_pipeline.annotate.results import ImageAnnotation


class AnnotatorWorker:
    """Actor body: builds the chain once, then annotates batches."""

    def __init__(self, models: dict[str, Any], torch_threads: int | None, fault_kill_probability: float):
        import torch

        from pad_pipeline.annotate.chain import Annotator

        if torch_threads:
            torch.set_num_threads(torch_threads)
        self.annotator = Annotator(ModelsConfig.model_validate(models)).setup()
        self.annotator.warm_up()
        self.fault_kill_probability = fault_kill_probability
        self.lock = threading.Lock()
        self.images_done = 0
        self.last_progress = time.time()
        self.rng = random.Random()

    def annotate(self, images: list[np.ndarray]) -> list[ImageAnnotation]:
        with self.lock:
            if self.fault_kill_probability and self.rng.random() < self.fault_kill_probability:
                os._exit(1)  # fault injection for tests: die mid-batch like a crashed GPU worker
            result = self.annotator.annotate(images)
            self.images_done += len(images)
            self.last_progress = time.time()
            return result

    def stats(self) -> dict[str, Any]:
        import resource

        return {"images": self.images_done, "last_progress": self.last_progress,
                "stage_seconds": dict(self.annotator.timings.seconds), "models": self.annotator.stats(),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}

    def placement(self) -> dict[str, Any]:
        ctx = ray.get_runtime_context()
        return {"gpu_ids": [str(g) for g in ray.get_gpu_ids()], "device": str(self.annotator.device),
                "pid": os.getpid(), "node_id": ctx.get_node_id(),
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}

    def provenance(self) -> dict[str, Any]:
        return self.annotator.provenance()


def create_actors(cfg: AnnotateConfig, count: int, use_gpus: bool) -> list[Any]:
    r = cfg.runner
    actor_cls = ray.remote(AnnotatorWorker)
    options: dict[str, Any] = {
        "num_cpus": r.cpus_per_annotator,
        "num_gpus": r.gpus_per_annotator if use_gpus else 0,
        "max_restarts": r.actor_restarts,
        "max_task_retries": r.actor_restarts,
        "max_concurrency": 4,
    }
    models = cfg.models.model_dump(mode="json")
    return [actor_cls.options(**options).remote(models, r.torch_threads, r.fault_kill_probability)
            for _ in range(count)]
