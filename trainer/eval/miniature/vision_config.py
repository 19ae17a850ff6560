"""The miniature's vision-tower settings (torch-free, so manifests that name them validate without torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pad_pipeline.core.config import ConfigModel


class VisionTowerConfig(ConfigModel):
    positions: Literal["sincos", "random"] = Field(
        "sincos", description="sincos: 2D sine-cosine position embeddings, so every patch token says where it "
                              "is; random: the tiny preset's own (std 0.02, too weak to read)")
    scale: float = Field(3.0, gt=0.0, description="sincos only: the embeddings' amplitude (per channel)")
