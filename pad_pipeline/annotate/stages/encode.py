"""Encode stage: detections + masks -> `labels` (the sample record's label dicts, RLE on device).

Empty masks are dropped and counted in `empty_masks`. Numbers are rounded (box to 0.1 px, scores to
4 decimals) so records are compact and stable across runs.
"""

from __future__ import annotations

from typing import Any

import torch

from pad_pipeline.annotate.ops.rle import encode_masks
from pad_pipeline.annotate.stages.base import Batch


def image_labels(detections: Any, masks: Any) -> tuple[list[dict[str, Any]], int]:
    """Label records of one image, best box score first, and the number of empty masks dropped."""
    areas = masks.masks.flatten(1).sum(1) if len(detections) else torch.zeros(0)
    keep = (areas > 0).nonzero().flatten()
    rles = encode_masks(masks.masks[keep]) if keep.numel() else []
    boxes = detections.boxes[keep].tolist() if keep.numel() else []
    scores = detections.scores[keep].tolist() if keep.numel() else []
    mask_scores = masks.scores[keep].tolist() if keep.numel() else []
    area_list = areas[keep].tolist() if keep.numel() else []
    labels = [{"tag": detections.labels[i], "bbox": [round(float(c), 1) for c in box],
               "score": round(float(s), 4), "mask_score": round(float(ms), 4), "area": int(a),
               "rle_mask": rle}
              for i, box, s, ms, a, rle in zip(keep.tolist(), boxes, scores, mask_scores, area_list, rles, strict=True)]
    labels.sort(key=lambda lab: -lab["score"])
    return labels, len(detections) - len(labels)


class EncodeStage:
    name = "encode"

    def setup(self, device: torch.device) -> None:
        pass

    def __call__(self, batch: Batch) -> Batch:
        results = [image_labels(d, m) for d, m in zip(batch["detections"], batch["masks"], strict=True)]
        return {**batch, "labels": [r[0] for r in results], "empty_masks": [r[1] for r in results]}

    def provenance(self) -> dict[str, Any]:
        return {}

    def stats(self) -> dict[str, Any]:
        return {}
