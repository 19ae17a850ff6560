"""Detect stage: images + tags -> `detections` (boxes, scores, one tag per box)."""

from __future__ import annotations

from pad_pipeline.annotate.stages.base import Batch, ModelStage


class DetectStage(ModelStage):
    name, role = "detect", "detector"

    def __call__(self, batch: Batch) -> Batch:
        tags = [t.tags for t in batch["tags"]]
        return {**batch, "detections": self.model.detect(batch["image"], tags)}
