"""NMS stage: class-agnostic non-maximum suppression of each image's detections, the batch in one call.

`ops.batched_nms` runs every image of the batch through one `torchvision.ops.nms` call (images moved
apart exactly, so each keeps what it would keep alone), best score first, at most `max_boxes` per image.
Host syncs per batch: 2 (torchvision's own, and one copy of the kept indices), whatever the number of
images and boxes; a batch without any box needs none.
"""

from __future__ import annotations

from typing import Any

import torch

from pad_pipeline.annotate.config import NmsConfig
from pad_pipeline.annotate.models.base import Detections
from pad_pipeline.annotate.ops.batched_nms import batched_class_agnostic_nms
from pad_pipeline.annotate.ops.transfer import to_device
from pad_pipeline.annotate.stages.base import Batch


def batch_nms(detections: list[Detections], iou_threshold: float, max_boxes: int | None) -> list[Detections]:
    """Each image's detections after class-agnostic NMS, best score first."""
    kept = batched_class_agnostic_nms([d.boxes for d in detections], [d.scores for d in detections], iou_threshold,
                                      max_boxes)
    out = []
    for d, idx in zip(detections, kept, strict=True):
        pick = to_device(torch.tensor(idx, dtype=torch.long), d.boxes.device)
        out.append(Detections(d.boxes[pick], d.scores[pick], [d.labels[i] for i in idx]))
    return out


class NmsStage:
    """See the module docstring (2 host syncs per batch)."""

    name = "nms"

    def __init__(self, cfg: NmsConfig):
        self.cfg = cfg

    def setup(self, device: torch.device) -> None:
        pass

    def __call__(self, batch: Batch) -> Batch:
        return {**batch, "detections": batch_nms(batch["detections"], self.cfg.iou_threshold, self.cfg.max_boxes)}

    def provenance(self) -> dict[str, Any]:
        return {"name": "torchvision.nms", "iou_threshold": self.cfg.iou_threshold}

    def stats(self) -> dict[str, Any]:
        return {}
