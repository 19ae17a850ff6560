"""The LM warm-up's settings (torch-free, so manifests that name them validate without importing torch)."""

from __future__ import annotations

from pydantic import Field

from pad_pipeline.core.config import ConfigModel


class WarmupConfig(ConfigModel):
    steps: int = Field(300, ge=0, description="optimizer steps (0: save the random LLM, the no-warm-up control)")
    batch_size: int = Field(32, ge=1)
    lr: float = Field(3e-3, gt=0.0, description="AdamW peak lr (linear warmup over 5% of steps, then cosine)")
    max_length: int = Field(64, ge=8, description="tokens per text (longer ones are cut)")
    hidden_size: int = Field(64, ge=8, description="Llama width (a multiple of 4: 4 attention heads)")
    layers: int = Field(2, ge=1)
