"""The thin Ray adapter for the model chain: an annotator actor per GPU (or per CPU worker).

Stages and the `Annotator` know nothing of Ray; this module only places them. An actor holds the whole
model chain on its own device and serves batches from several shard workers (calls are serialised by a
lock, while `stats()` still answers so the driver's watchdog can see progress). Ray restarts a dead
actor (`max_restarts`) and retries the calls it was serving (`max_task_retries`).

The constructor only stores the settings: `ready()` answers as soon as Ray has placed the actor (so the
driver can tell "cannot be placed" from "still loading"), and `setup()` loads the models. A load error
is raised by `setup()` as a one-line `PadError`, an ordinary task error: an exception raised in an
actor's constructor kills its worker process, whose teardown Ray reports with a C++ stack and a
SIGABRT dump. A restarted actor loads its models again on its first batch.

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
from pad_pipeline.core.errors import PadError
from pad_pipeline.core.hooks import read_hooks


def load_error(exc: BaseException) -> PadError:
    """A model-loading failure as one line: a `PadError` keeps its message, anything else is named."""
    if isinstance(exc, PadError):
        return PadError(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    return PadError(f"the annotator could not load its models: {type(exc).__name__}: {first}")


class AnnotatorWorker:
    """Actor body: loads the chain once (`setup()`, or the first batch after a restart), then annotates."""

    def __init__(self, models: dict[str, Any], torch_threads: int | None, faults: dict[str, float]):
        self.models = models
        self.torch_threads = torch_threads
        self.fault_kill_probability = faults.get("kill_probability", 0.0)
        self.fault_pause_in_model_load_s = faults.get("pause_in_model_load_s", 0.0)
        self.annotator: Any = None
        self.lock = threading.Lock()
        self.images_done = 0
        self.last_progress = time.time()
        self.rng = random.Random()

    def _load(self) -> Any:
        if self.annotator is not None:
            return self.annotator
        time.sleep(self.fault_pause_in_model_load_s)  # fault injection for tests: a slow model load
        try:
            import torch

            from pad_pipeline.annotate.chain import Annotator

            if self.torch_threads:
                torch.set_num_threads(self.torch_threads)
            annotator = Annotator(ModelsConfig.model_validate(self.models)).setup()
            annotator.warm_up()
        except Exception as exc:
            raise load_error(exc) from None
        self.annotator = annotator
        self.last_progress = time.time()
        return annotator

    def ready(self) -> dict[str, Any]:
        """Answers once Ray has placed and started this actor (models not loaded yet)."""
        return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id()}

    def setup(self) -> dict[str, Any]:
        """Load the models; returns what each stage loaded (the shard records' `models`)."""
        with self.lock:
            return self._load().provenance()

    def annotate(self, images: list[np.ndarray]) -> list[ImageAnnotation]:
        with self.lock:
            annotator = self._load()
            if self.fault_kill_probability and self.rng.random() < self.fault_kill_probability:
                os._exit(1)  # fault injection for tests: die mid-batch like a crashed GPU worker
            result = annotator.annotate(images)
            self.images_done += len(images)
            self.last_progress = time.time()
            return result

    def stats(self) -> dict[str, Any]:
        import resource

        loaded = self.annotator
        return {"images": self.images_done, "last_progress": self.last_progress,
                "stage_seconds": dict(loaded.timings.seconds) if loaded else {},
                "models": loaded.stats() if loaded else {},
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}

    def placement(self) -> dict[str, Any]:
        from pad_pipeline.core.runtime import resolve_device

        device = self.annotator.device if self.annotator else resolve_device(self.models["device"], "models.device")
        return {**self.ready(), "gpu_ids": [str(g) for g in ray.get_gpu_ids()], "device": str(device),
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}

    def provenance(self) -> dict[str, Any]:
        return self.setup()


def annotator_resources(cfg: AnnotateConfig, use_gpus: bool) -> dict[str, float]:
    """What one annotator actor asks Ray for."""
    return {"CPU": cfg.runner.cpus_per_annotator, "GPU": cfg.runner.gpus_per_annotator if use_gpus else 0.0}


def create_actors(cfg: AnnotateConfig, count: int, use_gpus: bool) -> list[Any]:
    r = cfg.runner
    resources = annotator_resources(cfg, use_gpus)
    options: dict[str, Any] = {
        "num_cpus": resources["CPU"],
        "num_gpus": resources["GPU"],
        "max_restarts": r.actor_restarts,
        "max_task_retries": r.actor_restarts,
        "max_concurrency": 4,
    }
    models = cfg.models.model_dump(mode="json")
    hooks = read_hooks()
    faults = {"kill_probability": hooks.kill_probability, "pause_in_model_load_s": hooks.pause_in_model_load_s}
    return [ray.remote(AnnotatorWorker).options(**options).remote(models, r.torch_threads, faults)
            for _ in range(count)]
