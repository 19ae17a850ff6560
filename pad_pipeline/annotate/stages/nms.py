"""NMS stage: class-agnostic non-maximum suppression of each image's detections (torchvision)."""

from __future__ import annotations

from typing import Any

import torch

from pad_pipeline.annotate.config import NmsConfig
from pad_pipeline.annotate.ops.boxes import class_agnostic_nms
from pad_pipeline.annotate.stages.base import Batch


class NmsStage:
    name = "nms"

    def __init__(self, cfg: NmsConfig):
        self.cfg = cfg

    def setup(self, device: torch.device) -> None:
        pass

    def __call__(self, batch: Batch) -> Batch:
        kept = [d.select(class_agnostic_nms(d.boxes, d.scores, self.cfg.iou_threshold, self.cfg.max_boxes))
                for d in batch["detections"]]
        return {**batch, "detections": kept}

    def provenance(self) -> dict[str, Any]:
        return {"name": "torchvision.nms", "iou_threshold": self.cfg.iou_threshold}

    def stats(self) -> dict[str, Any]:
        return {}
