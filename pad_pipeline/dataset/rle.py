"""The one COCO RLE codec of PAD: the `rle_mask` strings the annotator writes and everything else reads.

COCO RLE runs over the mask in column-major (Fortran) order and starts with a run of zeros. For the
annotator, run lengths are found on the masks' own device (only the change positions cross to the
host, never a full-resolution mask), then pycocotools compresses them into the `counts` string that
`pycocotools.mask.decode` reads back. Synthetic builds encode numpy masks (`encode_mask_array`);
`pad status/verify/show` and the trainer decode (`decode_mask`, `rle_bounding_box`).

torch is never imported here (the tensor functions only call tensor methods), so the torch-free tools
can import this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pycocotools import mask as mask_utils

if TYPE_CHECKING:
    import torch


def run_lengths(masks: torch.Tensor) -> list[list[int]]:
    """Uncompressed COCO run lengths of each (H, W) bool mask in `masks` (N, H, W), column-major."""
    n, h, w = masks.shape
    if n == 0:
        return []
    flat = masks.permute(0, 2, 1).reshape(n, h * w)
    # Positions where the value changes, with a virtual 0 before the start and a change at the end.
    changes = flat[:, 1:] != flat[:, :-1]
    out: list[list[int]] = []
    idx_all = changes.nonzero()
    starts = flat[:, 0].tolist()
    rows = idx_all[:, 0].cpu().numpy()
    cols = idx_all[:, 1].cpu().numpy() + 1
    bounds = np.searchsorted(rows, np.arange(n + 1))
    for i in range(n):
        cuts = cols[bounds[i]:bounds[i + 1]]
        edges = np.concatenate(([0], cuts, [h * w]))
        counts = np.diff(edges).tolist()
        if starts[i]:
            counts = [0] + counts
        out.append(counts)
    return out


def encode_masks(masks: torch.Tensor) -> list[str]:
    """COCO compressed RLE `counts` strings of (N, H, W) bool masks (any device)."""
    n, h, w = masks.shape
    strings = []
    for counts in run_lengths(masks.bool()):
        rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
        strings.append(rle["counts"].decode("ascii"))
    return strings


def encode_mask_array(mask: np.ndarray) -> str:
    """The COCO compressed RLE `counts` string of one (H, W) numpy mask (bool or 0/1)."""
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode("ascii")


def decode_mask(counts: str, height: int, width: int) -> np.ndarray:
    """The (H, W) uint8 mask of a compressed RLE counts string."""
    return mask_utils.decode({"size": [height, width], "counts": counts.encode("ascii")})


def rle_bounding_box(counts: str, height: int, width: int) -> tuple[int, int, int, int]:
    """(x, y, box width, box height) of a mask's pixels, read from its RLE without decoding it;
    all zeros for an empty mask."""
    x, y, w, h = mask_utils.toBbox({"size": [height, width], "counts": counts.encode("ascii")})
    return int(x), int(y), int(w), int(h)
