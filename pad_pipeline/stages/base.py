"""The stage interface."""

from __future__ import annotations

from typing import Any, Protocol

import torch

Batch = dict[str, list[Any]]


class Stage(Protocol):
    name: str

    def setup(self, device: torch.device) -> None:
        """Load weights (once) onto `device`."""

    def __call__(self, batch: Batch) -> Batch:
        """Return `batch` with this stage's columns added or filtered."""

    def provenance(self) -> dict[str, Any]:
        """Model name, checkpoint and revision (empty for model-free stages)."""
