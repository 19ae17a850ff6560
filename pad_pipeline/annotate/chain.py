"""The model chain of one worker: tag -> detect -> NMS -> segment -> encode, on one device.

`Annotator.annotate(images)` returns one `ImageAnnotation` per image, never raises for one bad image:
a CUDA out-of-memory error halves the batch and retries (down to single images, then `oom`); any other
error in a batch is retried image by image, and an image that still fails is `model_error`. If every
image of a multi-image batch fails alone too, the error is systemic and `SystemicModelError` is raised
so the shard fails and is retried or recorded, instead of silently writing a shard of failures.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from pad_pipeline.annotate.config import ModelsConfig
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

    def setup(self) -> "Annotator":
        self.device = resolve_device(self.models.device, "models.device")
        if self.device.type == "cpu":
            prepare_cpu_threads()
        set_seed(self.models.seed)
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

    def _run(self, images: Sequence[np.ndarray]) -> list[ImageAnnotation]:
        batch: dict[str, list[Any]] = {"image": list(images)}
        with torch.inference_mode():
            for stage in self.stages:
                t0 = time.perf_counter()
                batch = stage(batch)
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                self.timings.add(stage.name, time.perf_counter() - t0)
        self.timings.images += len(images)
        return [ImageAnnotation(t.tags, [round(float(s), 4) for s in t.scores], labels, empty)
                for t, labels, empty in zip(batch["tags"], batch["labels"], batch["empty_masks"], strict=True)]

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
