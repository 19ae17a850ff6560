"""Tag stage: images -> `tags` (TagResult per image, best first)."""

from __future__ import annotations

from typing import Any

import torch

from pad_pipeline.annotate_config import ModelsConfig, TaggerConfig
from pad_pipeline.registry import build_model
from pad_pipeline.stages.base import Batch


class TagStage:
    name = "tag"

    def __init__(self, cfg: TaggerConfig, models: ModelsConfig):
        self.cfg, self.models = cfg, models
        self.tagger: Any = None

    def setup(self, device: torch.device) -> None:
        self.tagger = build_model("tagger", self.cfg, self.models, device)

    def __call__(self, batch: Batch) -> Batch:
        return {**batch, "tags": self.tagger.tag(batch["image"])}

    def provenance(self) -> dict[str, Any]:
        return self.tagger.provenance()
