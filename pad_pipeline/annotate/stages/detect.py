"""Detect stage: images + tags -> `detections` (boxes, scores, one tag per box).

Host syncs per batch: 2 (the kept boxes of every pair found and their tag indices copied once,
`grounding_dino`), whatever the number of images, prompt chunks and boxes.
"""

from __future__ import annotations

from pad_pipeline.annotate.stages.base import Batch, ModelStage


class DetectStage(ModelStage):
    name, role = "detect", "detector"

    def __call__(self, batch: Batch) -> Batch:
        tags = [t.tags for t in batch["tags"]]
        return {**batch, "detections": self.model.detect(batch["image"], tags)}
