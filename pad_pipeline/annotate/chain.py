"""The model chain of one worker: tag -> detect -> NMS -> segment -> encode, on one device.

`Annotator.annotate(images)` returns one `ImageAnnotation` per image, never raises for one bad image:
a CUDA out-of-memory error halves the batch and retries (down to single images, then `oom`); any other
error in a batch is retried image by image, and an image that still fails is `model_error`. If every
image of a multi-image batch fails alone too, the error is systemic and `SystemicModelError` is raised
so the shard fails and is retried or recorded, instead of silently writing a shard of failures.

Host and device overlap: a call's images run in micro-batches of `models.segmenter.batch_size` (an
image's annotation does not depend on its batch, so this changes no byte). After micro-batch k's
segmenter is queued on the device, the host finishes micro-batch k-1 (RLE strings, label records)
while the device works; on CUDA, uploads come from pinned memory without blocking. Per-stage timings
synchronise the device after each stage only when `sync_timings` is set (bench/gpu.py's stage figures);
otherwise a stage's seconds are the host's time in it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from pad_pipeline.annotate.config import ModelsConfig
from pad_pipeline.annotate.models import compiling
from pad_pipeline.annotate.results import ImageAnnotation
from pad_pipeline.annotate.stages.base import Stage
from pad_pipeline.annotate.stages.detect import DetectStage
from pad_pipeline.annotate.stages.encode import EncodeStage
from pad_pipeline.annotate.stages.nms import NmsStage
from pad_pipeline.annotate.stages.segment import SegmentStage
from pad_pipeline.annotate.stages.tag import TagStage
from pad_pipeline.core.runtime import prepare_cpu_threads, resolve_device, set_seed

log = logging.getLogger(__name__)


class SystemicModelError(RuntimeError):
    """Every image of a batch failed on its own too: a broken model or environment, not a bad image."""


@dataclass
class ChainTimings:
    """Seconds spent inside each stage (for the benchmark's pipeline-efficiency figure)."""

    seconds: dict[str, float] = field(default_factory=dict)
    images: int = 0

    def add(self, name: str, dt: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + dt


def build_stages(models: ModelsConfig) -> list[Stage]:
    return [TagStage(models.tagger, models), DetectStage(models.detector, models), NmsStage(models.nms),
            SegmentStage(models.segmenter, models), EncodeStage()]


class Annotator:
    def __init__(self, models: ModelsConfig):
        self.models = models
        self.stages = build_stages(models)
        self.device = torch.device("cpu")
        self.timings = ChainTimings()
        self.sync_timings = False

    def setup(self) -> "Annotator":
        self.device = resolve_device(self.models.device, "models.device")
        if self.device.type == "cpu":
            prepare_cpu_threads()
        set_seed(self.models.seed)
        compiling.MODE = self.models.compile_mode
        for stage in self.stages:
            stage.setup(self.device)
        return self

    def warm_up(self) -> None:
        """One small image through the whole chain: a broken checkpoint fails here, before any shard,
        and first-call costs (kernel selection, allocator growth) stay out of the shard timings."""
        self._run([np.full((64, 64, 3), 127, np.uint8)])
        self.timings = ChainTimings()

    def provenance(self) -> dict[str, Any]:
        """What each stage loaded (fixed once set up): the shard records' `models`."""
        return {s.name: s.provenance() for s in self.stages if s.provenance()}

    def stats(self) -> dict[str, Any]:
        """What each stage counted since set-up, warm-up included (e.g. the detector's text-cache
        reuse and dropped tags); stages with nothing to report are left out."""
        return {s.name: s.stats() for s in self.stages if s.stats()}

    def _stage(self, name: str, fn: Any, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        t0 = time.perf_counter()
        batch = fn(batch)
        if self.sync_timings and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.timings.add(name, time.perf_counter() - t0)
        return batch

    @staticmethod
    def _records(batch: dict[str, list[Any]]) -> list[ImageAnnotation]:
        return [ImageAnnotation(t.tags, [round(float(s), 4) for s in t.scores], labels, empty)
                for t, labels, empty in zip(batch["tags"], batch["labels"], batch["empty_masks"], strict=True)]

    def _run(self, images: Sequence[np.ndarray]) -> list[ImageAnnotation]:
        *device_stages, last = self.stages
        split = isinstance(last, EncodeStage)  # its host half can overlap the next micro-batch
        micro = self.models.segmenter.batch_size if split else max(len(images), 1)
        results: list[ImageAnnotation] = []
        pending: dict[str, list[Any]] | None = None
        with torch.inference_mode():
            for start in range(0, len(images), micro):
                batch: dict[str, list[Any]] = {"image": list(images[start:start + micro])}
                for stage in device_stages:
                    batch = self._stage(stage.name, stage, batch)
                if not isinstance(last, EncodeStage):
                    results += self._records(self._stage(last.name, last, batch))
                    continue
                if pending is not None:  # the host finishes k-1 while the device runs k's segmenter
                    results += self._records(self._stage(last.name, last.finish, pending))
                pending = self._stage(last.name, last.start, batch)
            if pending is not None and isinstance(last, EncodeStage):
                results += self._records(self._stage(last.name, last.finish, pending))
        self.timings.images += len(images)
        return results

    def annotate(self, images: Sequence[np.ndarray]) -> list[ImageAnnotation]:
        if not images:
            return []
        try:
            return self._run(images)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            if len(images) == 1:
                return [ImageAnnotation(failure="oom")]
            half = len(images) // 2
            log.warning("CUDA out of memory on a batch of %d; retrying as %d + %d", len(images), half,
                        len(images) - half)
            return self.annotate(images[:half]) + self.annotate(images[half:])
        except Exception as batch_error:
            if len(images) == 1:
                return [ImageAnnotation(failure=f"model_error: {type(batch_error).__name__}: {batch_error}"[:300])]
            results = [self.annotate([im])[0] for im in images]
            if all(r.failure and r.failure.startswith("model_error") for r in results):
                raise SystemicModelError(f"every image of a batch of {len(images)} failed: "
                                         f"{batch_error!r}") from batch_error
            return results
