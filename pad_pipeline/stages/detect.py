"""Detect stage: images + tags -> `detections` (boxes, scores, one tag per box)."""

from __future__ import annotations

from typing import Any

import torch

from pad_pipeline.annotate_config import DetectorConfig, ModelsConfig
from pad_pipeline.registry import build_model
from pad_pipeline.stages.base import Batch


class DetectStage:
    name = "detect"

    def __init__(self, cfg: DetectorConfig, models: ModelsConfig):
        self.cfg, self.models = cfg, models
        self.detector: Any = None

    def setup(self, device: torch.device) -> None:
        self.detector = build_model("detector", self.cfg, self.models, device)

    def __call__(self, batch: Batch) -> Batch:
        tags = [t.tags for t in batch["tags"]]
        return {**batch, "detections": self.detector.detect(batch["image"], tags)}

    def provenance(self) -> dict[str, Any]:
        return self.detector.provenance()
