"""What the model chain returns for one image (kept free of torch so shard tasks stay light)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ImageAnnotation:
    tags: list[str] = field(default_factory=list)
    tag_scores: list[float] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)
    empty_masks: int = 0
    failure: str | None = None
