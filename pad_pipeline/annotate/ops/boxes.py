"""Box operations in xyxy pixel coordinates (x0, y0, x1, y1)."""

from __future__ import annotations

import torch
import torchvision


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


def scale_normalized(boxes: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Normalised [0, 1] xyxy boxes -> pixels of a (width, height) image."""
    return boxes * boxes.new_tensor([width, height, width, height])


def clip_to_image(boxes: torch.Tensor, width: int, height: int) -> torch.Tensor:
    out = boxes.clone()
    out[:, 0::2] = out[:, 0::2].clamp(0, width)
    out[:, 1::2] = out[:, 1::2].clamp(0, height)
    return out


def mask_bounding_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Tight xyxy boxes (pixel edges, x1/y1 exclusive) of (N, H, W) bool masks; zeros for empty masks."""
    n = masks.shape[0]
    if n == 0:
        return torch.zeros((0, 4), dtype=torch.float32, device=masks.device)
    rows = masks.any(dim=2)
    cols = masks.any(dim=1)
    h, w = masks.shape[1:]
    ar_h = torch.arange(h, device=masks.device)
    ar_w = torch.arange(w, device=masks.device)
    y0 = torch.where(rows, ar_h, h).min(1).values
    y1 = torch.where(rows, ar_h, -1).max(1).values + 1
    x0 = torch.where(cols, ar_w, w).min(1).values
    x1 = torch.where(cols, ar_w, -1).max(1).values + 1
    boxes = torch.stack((x0, y0, x1, y1), dim=1).float()
    return torch.where(rows.any(1, keepdim=True), boxes, torch.zeros_like(boxes))


def class_agnostic_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
                       max_boxes: int | None = None) -> torch.Tensor:
    """Indices of the boxes kept by class-agnostic NMS, best score first, at most `max_boxes`."""
    if boxes.shape[0] == 0:
        return torch.zeros((0,), dtype=torch.long, device=boxes.device)
    keep = torchvision.ops.nms(boxes.float(), scores.float(), iou_threshold)
    return keep[:max_boxes] if max_boxes is not None else keep
