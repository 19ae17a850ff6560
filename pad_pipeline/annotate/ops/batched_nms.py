"""Class-agnostic NMS of every image of a batch in one `torchvision.ops.nms` call, batch-independent.

`torchvision.ops.nms` works on one set of boxes and, on CUDA, copies its suppression mask to the host:
called per image, that is one sync per image. Here every image's boxes are moved, in float64, by a
multiple of 2^20 pixels (image b by b * 2^20) so that no two images overlap, and the whole batch goes
through ONE call. In float64 the move is exact and so are the box sides computed from moved corners
(float32 corners below 2^20 px, batches under 2^10 images), so each image's IoUs and decisions are
the ones it would get alone in float64: an image's result does not depend on its slot or neighbours.
Kept boxes come back best score first; `max_boxes` is applied per image on the host.

Host syncs per call: 2 (the one inside torchvision's CUDA kernel, and one copy of the kept indices).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torchvision

from pad_pipeline.annotate.ops.transfer import to_device

SHIFT = float(2**20)  # larger than any image side PAD annotates (intake bounds the pixel count)


def batched_class_agnostic_nms(boxes: Sequence[torch.Tensor], scores: Sequence[torch.Tensor], iou_threshold: float,
                               max_boxes: int | None = None) -> list[list[int]]:
    """Per image, the indices of the boxes class-agnostic NMS keeps, best score first, at most `max_boxes`."""
    counts = [int(b.shape[0]) for b in boxes]
    if not sum(counts):
        return [[] for _ in boxes]
    device = next(b.device for b in boxes if b.shape[0])
    image_of = np.repeat(np.arange(len(boxes)), counts)
    shift = to_device(torch.from_numpy(image_of * SHIFT), device)[:, None]
    flat = torch.cat([b.to(device) for b in boxes]).double() + shift
    keep = torchvision.ops.nms(flat, torch.cat([s.to(device) for s in scores]).double(), iou_threshold)
    starts = np.concatenate(([0], np.cumsum(counts)))
    kept: list[list[int]] = [[] for _ in boxes]
    for index in keep.cpu().numpy().tolist():
        b = int(image_of[index])
        if max_boxes is None or len(kept[b]) < max_boxes:
            kept[b].append(index - int(starts[b]))
    return kept
