"""NMS stage: class-agnostic non-maximum suppression of each image's detections, the batch at once.

`ops.batched_nms.greedy_nms` keeps, per image, what `torchvision.ops.nms` keeps (best score first, at
most `max_boxes`), for every image of the batch in one device pass. Host syncs per batch: 2 (the kept
entries' `nonzero` and one copy of their indices, to carry the tags), whatever the number of images and
boxes; a batch without any box needs none.
"""

from __future__ import annotations

from typing import Any

import torch

from pad_pipeline.annotate.config import NmsConfig
from pad_pipeline.annotate.models.base import Detections
from pad_pipeline.annotate.ops.batched_nms import greedy_nms, kept_entries, pad_batch
from pad_pipeline.annotate.stages.base import Batch


def batch_nms(detections: list[Detections], iou_threshold: float, max_boxes: int | None) -> list[Detections]:
    """Each image's detections after class-agnostic NMS, best score first."""
    width = max((len(d) for d in detections), default=0)
    if width == 0:
        return detections
    boxes, scores, valid = pad_batch([d.boxes for d in detections], [d.scores for d in detections], width)
    order, keep = greedy_nms(boxes, scores, valid, iou_threshold, max_boxes)
    image, index = kept_entries(order, keep)
    host = torch.stack([image, index]).cpu().numpy()
    counts = [0] * len(detections)
    labels: list[list[str]] = [[] for _ in detections]
    for b, i in zip(host[0].tolist(), host[1].tolist(), strict=True):
        counts[b] += 1
        labels[b].append(detections[b].labels[i])
    kept_boxes, kept_scores = boxes[image, index], scores[image, index]
    return [Detections(bx, sc, lab) for bx, sc, lab in zip(kept_boxes.split(counts), kept_scores.split(counts),
                                                            labels, strict=True)]


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
