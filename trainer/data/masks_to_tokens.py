"""Mask -> vision tokens: the paper's half-area rule on the token grid the projector emits.

Token i belongs to a region when the region's mask covers at least `min_coverage` (0.5) of token i's
patch area, measured after the same pad/resize/crop the image goes through. Coverage is computed
exactly: a mask is constant on source pixels, so the covered area of a cell is
`wy @ mask @ wx.T` with the per-axis overlap weights of `ImageGeometry.cell_weights`. The same rule
serves projectors that change the grid (C-Abstractor): only `grid` differs.
"""

from __future__ import annotations

import numpy as np
import torch
from pycocotools import mask as mask_utils

from trainer.data.geometry import ImageGeometry


def decode_rle(rle_mask: str, height: int, width: int) -> np.ndarray:
    """COCO compressed-RLE counts string -> uint8 [height, width] mask."""
    return mask_utils.decode({"size": [height, width], "counts": rle_mask.encode()})


def mask_coverage(masks: torch.Tensor, geometry: ImageGeometry, grid: int) -> torch.Tensor:
    """Covered fraction of each output-grid cell: masks [L, h, w] (0/1) -> [L, grid, grid] in [0, 1]."""
    wy, wx = geometry.cell_weights(grid)
    covered = wy @ masks.float() @ wx.T
    return covered / geometry.cell_area(grid)


def rle_coverage(rles: list[str], geometry: ImageGeometry, grid: int) -> torch.Tensor:
    """`mask_coverage` straight from RLE strings; each mask is cropped to its bounding box first
    (exact: pixels outside it are 0), which makes small objects cheap."""
    wy, wx = geometry.cell_weights(grid)
    h, w = geometry.height, geometry.width
    out = torch.zeros(len(rles), grid, grid)
    for i, counts in enumerate(rles):
        rle = {"size": [h, w], "counts": counts.encode()}
        x, y, bw, bh = (int(v) for v in mask_utils.toBbox(rle))
        if bw == 0 or bh == 0:
            continue
        crop = torch.from_numpy(mask_utils.decode(rle)[y:y + bh, x:x + bw]).float()
        out[i] = wy[:, y:y + bh] @ crop @ wx[:, x:x + bw].T
    return out / geometry.cell_area(grid)


def masks_to_token_masks(masks: torch.Tensor, geometry: ImageGeometry, grid: int,
                         min_coverage: float = 0.5) -> torch.Tensor:
    """Boolean token membership [L, grid * grid] (row-major, like the vision tokens) per mask."""
    # A small epsilon keeps exactly-half cells in despite float rounding of the weights.
    return (mask_coverage(masks, geometry, grid) >= min_coverage - 1e-6).flatten(1)
