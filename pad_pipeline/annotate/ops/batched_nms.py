"""Class-agnostic NMS of every image of a batch at once, on the device, without reading anything back.

`torchvision.ops.nms` works on one image and, on CUDA, copies its suppression mask to the host: one sync
per image. `greedy_nms` pads the batch's boxes to (B, N), sorts each image's boxes by score, computes
every pairwise IoU with torchvision's CPU formula (same float32 operations, same order), and runs the
greedy pass as N vector steps over the whole batch, so the kept set equals torchvision's per image,
best score first, and an image's result does not depend on the others (each row only reads its own).
`pad_batch` and `kept_entries` move the ragged per-image boxes in and out with host-known sizes.
"""

from __future__ import annotations

from typing import Sequence

import torch

from pad_pipeline.annotate.ops.transfer import to_device


def pad_batch(boxes: Sequence[torch.Tensor], scores: Sequence[torch.Tensor], width: int
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ragged (n_b, 4) boxes and (n_b,) scores -> (B, width, 4), (B, width), valid (B, width); no sync."""
    device = boxes[0].device
    batch = len(boxes)
    positions = to_device(torch.tensor([b * width + k for b, bx in enumerate(boxes) for k in range(len(bx))],
                                       dtype=torch.long), device)
    flat_boxes = torch.zeros(batch * width, 4, device=device).index_copy_(0, positions,
                                                                            torch.cat(list(boxes)).float())
    flat_scores = torch.zeros(batch * width, device=device).index_copy_(0, positions, torch.cat(list(scores)).float())
    valid = torch.zeros(batch * width, dtype=torch.bool, device=device).index_fill_(0, positions, True)
    return flat_boxes.view(batch, width, 4), flat_scores.view(batch, width), valid.view(batch, width)


def pairwise_iou(boxes: torch.Tensor) -> torch.Tensor:
    """(B, N, 4) xyxy -> (B, N, N) IoU, computed as torchvision's CPU NMS kernel computes it."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    area = (x2 - x1) * (y2 - y1)
    w = (torch.minimum(x2[:, :, None], x2[:, None, :]) - torch.maximum(x1[:, :, None], x1[:, None, :])).clamp(min=0)
    h = (torch.minimum(y2[:, :, None], y2[:, None, :]) - torch.maximum(y1[:, :, None], y1[:, None, :])).clamp(min=0)
    inter = w * h
    return inter / (area[:, :, None] + area[:, None, :] - inter)


def greedy_nms(boxes: torch.Tensor, scores: torch.Tensor, valid: torch.Tensor, iou_threshold: float,
               max_boxes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: `order` (B, N), the box indices by descending score (stable), and `keep` (B, N) bool in
    that order: the boxes greedy NMS keeps, at most `max_boxes` per row."""
    order = scores.masked_fill(~valid, float("-inf")).sort(dim=1, descending=True, stable=True).indices
    sorted_boxes = boxes.gather(1, order[..., None].expand(-1, -1, 4))
    keep = valid.gather(1, order)
    n = int(boxes.shape[1])
    over = pairwise_iou(sorted_boxes) > iou_threshold
    later = torch.ones(n, n, dtype=torch.bool, device=boxes.device).triu(1)
    over &= later  # a box only suppresses the boxes after it
    for i in range(n):  # n vector steps for the whole batch; no value is read back
        keep &= ~(over[:, i, :] & keep[:, i:i + 1])
    if max_boxes is not None:
        keep &= keep.cumsum(1) <= max_boxes
    return order, keep


def kept_entries(order: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(K,) image and (K,) box index of every kept box, per image best score first (device tensors)."""
    kept = keep.nonzero()
    return kept[:, 0], order[kept[:, 0], kept[:, 1]]
