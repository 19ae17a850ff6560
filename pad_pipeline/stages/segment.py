"""Segment stage: images + boxes -> `masks` (MaskResult per image, one mask per box)."""

from __future__ import annotations

from typing import Any

import torch

from pad_pipeline.annotate_config import ModelsConfig, SegmenterConfig
from pad_pipeline.registry import build_model
from pad_pipeline.stages.base import Batch


class SegmentStage:
    name = "segment"

    def __init__(self, cfg: SegmenterConfig, models: ModelsConfig):
        self.cfg, self.models = cfg, models
        self.segmenter: Any = None

    def setup(self, device: torch.device) -> None:
        self.segmenter = build_model("segmenter", self.cfg, self.models, device)

    def __call__(self, batch: Batch) -> Batch:
        boxes = [d.boxes for d in batch["detections"]]
        return {**batch, "masks": self.segmenter.segment(batch["image"], boxes)}

    def provenance(self) -> dict[str, Any]:
        return self.segmenter.provenance()
