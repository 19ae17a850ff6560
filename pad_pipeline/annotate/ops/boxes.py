"""Box operations in xyxy pixel coordinates (x0, y0, x1, y1): the detector's box decoding, the NMS stage."""

from __future__ import annotations

import torch
import torchvision


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) centre/size boxes -> corner boxes, in the same units."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


def scale_normalized(boxes: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Normalised [0, 1] xyxy boxes -> pixels of a (width, height) image."""
    return boxes * boxes.new_tensor([width, height, width, height])


def clip_to_image(boxes: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """(N, 4) xyxy pixel boxes clamped into a (width, height) image (a new tensor)."""
    out = boxes.clone()
    out[:, 0::2] = out[:, 0::2].clamp(0, width)
    out[:, 1::2] = out[:, 1::2].clamp(0, height)
    return out


def class_agnostic_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
                       max_boxes: int | None = None) -> torch.Tensor:
    """Indices of the boxes kept by class-agnostic NMS, best score first, at most `max_boxes`."""
    if boxes.shape[0] == 0:
        return torch.zeros((0,), dtype=torch.long, device=boxes.device)
    keep = torchvision.ops.nms(boxes.float(), scores.float(), iou_threshold)
    return keep[:max_boxes] if max_boxes is not None else keep
