"""Segment stage: images + boxes -> `masks` (MaskResult per image, one mask per box).

Host syncs per batch: 0 (SAM and SAM 2 keep boxes, embeddings and masks on the device; the encode stage
reads the masks back).
"""

from __future__ import annotations

from pad_pipeline.annotate.stages.base import Batch, ModelStage


class SegmentStage(ModelStage):
    name, role = "segment", "segmenter"

    def __call__(self, batch: Batch) -> Batch:
        boxes = [d.boxes for d in batch["detections"]]
        return {**batch, "masks": self.model.segment(batch["image"], boxes)}
