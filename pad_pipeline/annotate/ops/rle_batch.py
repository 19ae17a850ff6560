"""COCO RLE of a whole batch of masks: one run-length pass on the device, one copy to the host.

The annotator's encode stage holds, per image, (N_i, H_i, W_i) bool masks on the model device. Instead
of one device pass and one copy per image (or per mask), `batch_run_boundaries` lays every mask of the
batch end to end in column-major (COCO) order, marks each position whose value differs from the one
before it (a virtual 0 before every mask: COCO runs start with zeros), and finds all marks with ONE
`nonzero`; `encode_batch` then copies those positions, together with any per-mask numbers the caller
packs beside them, to the host in ONE copy. On the host the positions are cut per mask, turned into
run lengths and compressed by pycocotools (`frPyObjects`, the same C code `pycocotools.mask.encode`
uses), so the strings are byte-identical to `pycocotools.mask.encode` of each mask. Areas come from the
runs (the sum of the odd runs), so empty masks are known without another device read.

Host syncs per call: 2 (the `nonzero`, whose size the host must learn, and the one copy), whatever
the number of images and masks. `start_encode` (device pass, copy under way) and `finish_encode` (host
strings) split the work, so the annotator can finish one batch on the host while the next one runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from pycocotools import mask as mask_utils

from pad_pipeline.annotate.ops.transfer import to_device


@dataclass
class EncodedMasks:
    """Host-side result of one batch: per image, its masks' RLE strings and areas, and the extra rows."""

    strings: list[list[str]]
    areas: list[list[int]]
    extras: np.ndarray  # (total masks, k) float64: what the caller packed with the masks, in mask order


def batch_run_boundaries(masks: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[int]]:
    """Positions (on the device) where each mask's column-major values change, in the concatenated flat
    order of all masks, and the host-side start offset of every mask (plus the total at the end)."""
    flat_parts, offsets, total = [], [0], 0
    for m in masks:
        n, h, w = m.shape
        for _ in range(n):
            total += h * w
            offsets.append(total)
        if n:
            flat_parts.append(m.bool().permute(0, 2, 1).reshape(-1))
    if not flat_parts:
        device = masks[0].device if masks else torch.device("cpu")
        return torch.zeros(0, dtype=torch.long, device=device), offsets
    flat = torch.cat(flat_parts)
    before = torch.cat([flat.new_zeros(1), flat[:-1]])
    starts = to_device(torch.tensor(offsets[:-1], dtype=torch.long), flat.device)
    before[starts] = False  # each mask starts after a virtual 0, not after the previous mask's last pixel
    return (flat != before).nonzero().flatten(), offsets


def counts_from_positions(positions: np.ndarray, offsets: Sequence[int]) -> list[list[int]]:
    """Uncompressed COCO run lengths of every mask from the sorted change positions of the batch."""
    bounds = np.searchsorted(positions, np.asarray(offsets, dtype=np.int64))
    out = []
    for i in range(len(offsets) - 1):
        size = offsets[i + 1] - offsets[i]
        cuts = positions[bounds[i]:bounds[i + 1]] - offsets[i]
        out.append(np.diff(np.concatenate(([0], cuts, [size]))).tolist())
    return out


def compress(counts: list[list[int]], sizes: Sequence[tuple[int, int]]) -> list[str]:
    """COCO compressed `counts` strings of uncompressed run lengths (pycocotools' own compressor)."""
    if not counts:
        return []
    objs = [{"size": [h, w], "counts": c} for c, (h, w) in zip(counts, sizes, strict=True)]
    rles = [mask_utils.frPyObjects(o, o["size"][0], o["size"][1]) for o in objs]
    return [r["counts"].decode("ascii") for r in rles]


@dataclass
class CopiedBoundaries:
    """A batch's run boundaries and extras on their way to the host (`start_encode`); `finish_encode`
    turns them into strings. On CUDA the copy lands in pinned memory without blocking; `ready` marks it."""

    host: torch.Tensor
    ready: torch.cuda.Event | None
    offsets: list[int]
    sizes: list[tuple[int, int]]
    per_image: list[int]
    k: int


def start_encode(masks: Sequence[torch.Tensor], extras: torch.Tensor | None = None) -> CopiedBoundaries:
    """The device part of `encode_batch`: the run-length pass and the one device-to-host copy."""
    positions, offsets = batch_run_boundaries(masks)
    n_masks = len(offsets) - 1
    k = 0 if extras is None else int(extras.shape[1])
    packed = positions.double()
    if extras is not None and n_masks:
        packed = torch.cat([extras.to(positions.device).double().flatten(), packed])
    ready = None
    if packed.is_cuda:
        host = torch.empty(packed.shape, dtype=packed.dtype, pin_memory=True)
        host.copy_(packed, non_blocking=True)
        ready = torch.cuda.Event()
        ready.record()
    else:
        host = packed.cpu()
    sizes = [(int(m.shape[1]), int(m.shape[2])) for m in masks for _ in range(int(m.shape[0]))]
    return CopiedBoundaries(host, ready, offsets, sizes, [int(m.shape[0]) for m in masks], k)


def finish_encode(copied: CopiedBoundaries) -> EncodedMasks:
    """The host part of `encode_batch`: run lengths, compressed strings and areas, per image."""
    if copied.ready is not None:
        copied.ready.synchronize()
    host = copied.host.numpy()
    n_masks, k = len(copied.offsets) - 1, copied.k
    extra_rows = host[:n_masks * k].reshape(n_masks, k) if k else np.zeros((n_masks, 0))
    counts = counts_from_positions(host[n_masks * k:].astype(np.int64), copied.offsets)
    strings = compress(counts, copied.sizes)
    areas = [int(sum(c[1::2])) for c in counts]
    per_strings, per_areas, start = [], [], 0
    for n in copied.per_image:
        per_strings.append(strings[start:start + n])
        per_areas.append(areas[start:start + n])
        start += n
    return EncodedMasks(per_strings, per_areas, extra_rows)


def encode_batch(masks: Sequence[torch.Tensor], extras: torch.Tensor | None = None) -> EncodedMasks:
    """RLE strings and areas of every mask of every image in `masks` ((N_i, H_i, W_i) each, one device).

    `extras` (total masks, k) float rows (boxes, scores) ride along in the same device-to-host copy and
    come back as float64 (exact for float32 inputs)."""
    return finish_encode(start_encode(masks, extras))
