"""The stage interface, and the base of the stages that hold one model wrapper."""

from __future__ import annotations

from typing import Any, Protocol

import torch

from pad_pipeline.annotate.config import ModelsConfig
from pad_pipeline.annotate.models.registry import build_model

Batch = dict[str, list[Any]]


class Stage(Protocol):
    name: str

    def setup(self, device: torch.device) -> None:
        """Load weights (once) onto `device`."""

    def __call__(self, batch: Batch) -> Batch:
        """Return `batch` with this stage's columns added or filtered."""

    def provenance(self) -> dict[str, Any]:
        """Model name, checkpoint and revision (empty for model-free stages)."""

    def stats(self) -> dict[str, Any]:
        """Counts since setup that the annotator actor reports (empty when there is nothing to count)."""


class ModelStage:
    """A stage around one registry-built wrapper (`role` is tagger, detector or segmenter)."""

    name = "model"
    role = ""

    def __init__(self, cfg: Any, models: ModelsConfig):
        self.cfg, self.models = cfg, models
        self.model: Any = None

    def setup(self, device: torch.device) -> None:
        self.model = build_model(self.role, self.cfg, self.models, device)

    def provenance(self) -> dict[str, Any]:
        return self.model.provenance()

    def stats(self) -> dict[str, Any]:
        return self.model.stats()
