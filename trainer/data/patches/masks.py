"""Mask -> vision tokens: the paper's half-area rule on the token grid the projector emits.

Token i belongs to a region when the region's mask covers at least `min_coverage` (0.5) of token i's
patch area, measured after the same pad/resize/crop the image goes through. Coverage is computed
exactly: a mask is constant on source pixels, so the covered area of a cell is
`wy @ mask @ wx.T` with the per-axis overlap weights of `ImageGeometry.cell_weights`. The same rule
serves projectors that change the grid (C-Abstractor): only `grid` differs.

`rle_token_masks(rles, geometry, grid)` is the one call from a sample's `rle_mask` strings to token
masks (the training data, a future `pad show --grid`); `rle_coverage` and `coverage_to_token_masks`
are its two steps.
"""

from __future__ import annotations

import torch

from pad_pipeline.dataset.rle import decode_mask, rle_bounding_box
from trainer.data.geometry import ImageGeometry

# Exactly-half cells stay in despite float rounding of the weights.
_EPSILON = 1e-6


def rle_coverage(rles: list[str], geometry: ImageGeometry, grid: int) -> torch.Tensor:
    """Covered fraction [L, grid, grid] in [0, 1] of each output-grid cell, per RLE mask of the stored
    image. Each mask is cropped to its bounding box first (exact: pixels outside it are 0), which makes
    small objects cheap."""
    wy, wx = geometry.cell_weights(grid)
    h, w = geometry.height, geometry.width
    out = torch.zeros(len(rles), grid, grid)
    for i, counts in enumerate(rles):
        x, y, bw, bh = rle_bounding_box(counts, h, w)
        if bw == 0 or bh == 0:
            continue
        crop = torch.from_numpy(decode_mask(counts, h, w)[y:y + bh, x:x + bw]).float()
        out[i] = wy[:, y:y + bh] @ crop @ wx[:, x:x + bw].T
    return out / geometry.cell_area(grid)


def coverage_to_token_masks(coverage: torch.Tensor, min_coverage: float = 0.5) -> torch.Tensor:
    """The half-area rule: coverage [L, grid, grid] -> bool token membership [L, grid * grid]
    (row-major, like the vision tokens)."""
    return (coverage >= min_coverage - _EPSILON).flatten(1)


def rle_token_masks(rles: list[str], geometry: ImageGeometry, grid: int, min_coverage: float = 0.5
                    ) -> torch.Tensor:
    """Bool token masks [L, grid * grid] of RLE masks of the stored image (see the module docstring)."""
    return coverage_to_token_masks(rle_coverage(rles, geometry, grid), min_coverage)
