"""The half-area mask -> token rule against hand-computed grids, through crop and pad geometries.

Masks go through the product path (RLE strings -> `rle_coverage` / `rle_token_masks`); `_dense_coverage`
is the plain formula `wy @ mask @ wx.T / cell_area` on the whole mask, the reference for the
bounding-box crop the RLE path takes.
"""

import numpy as np
import torch

from pad_pipeline.dataset.rle import encode_mask_array
from trainer.data.geometry import ImageGeometry, ProcessorSpec
from trainer.data.patches.masks import coverage_to_token_masks, rle_coverage, rle_token_masks

MEAN = (0.5, 0.5, 0.5)


def spec(aspect: str, size: int = 4) -> ProcessorSpec:
    return ProcessorSpec(shortest_edge=size, crop=size, mean=MEAN, std=MEAN, aspect=aspect)


def _rles(masks: torch.Tensor) -> list[str]:
    return [encode_mask_array(m.numpy()) for m in masks]


def _coverage(masks: torch.Tensor, g: ImageGeometry, grid: int) -> torch.Tensor:
    return rle_coverage(_rles(masks), g, grid)


def _tokens(masks: torch.Tensor, g: ImageGeometry, grid: int) -> torch.Tensor:
    return rle_token_masks(_rles(masks), g, grid)


def _dense_coverage(masks: torch.Tensor, g: ImageGeometry, grid: int) -> torch.Tensor:
    wy, wx = g.cell_weights(grid)
    return wy @ masks.float() @ wx.T / g.cell_area(grid)


def test_crop_geometry_keeps_the_centre_columns():
    # 8 x 4 image, target 4: no resize (short side is 4), centre crop drops columns 0-1 and 6-7.
    g = ImageGeometry.plan(8, 4, spec("crop"))
    assert (g.resized_w, g.resized_h, g.crop_left, g.crop_top) == (8, 4, 2, 0)
    mask = torch.zeros(1, 4, 8)
    mask[0, 0:2, 2:4] = 1          # exactly token (0, 0) of a 2 x 2 grid (2 x 2 px cells)
    mask[0, 2:4, 4:5] = 1          # half of token (1, 1): columns 4 of 4-5
    mask[0, 0:1, 0:2] = 1          # cropped away: must select nothing
    cov = _coverage(mask, g, grid=2)[0]
    assert torch.allclose(cov, torch.tensor([[1.0, 0.0], [0.0, 0.5]]))
    assert _tokens(mask, g, grid=2)[0].tolist() == [True, False, False, True]  # half counts in


def test_just_under_half_is_out():
    g = ImageGeometry.plan(4, 4, spec("crop"))
    mask = torch.zeros(1, 4, 4)
    mask[0, 0:2, 0:2] = 1
    mask[0, 0, 0] = 0              # 3 of 4 pixels of token 0 -> in
    mask[0, 2:4, 2] = 1            # 2 of 4 pixels of token 3 -> in (exactly half)
    mask[0, 2, 3] = 0
    mask[0, 0:1, 3] = 1            # 1 of 4 pixels of token 1 -> out
    assert _tokens(mask, g, grid=2)[0].tolist() == [True, False, False, True]


def test_the_rule_keeps_exact_halves_despite_rounding_and_honours_min_coverage():
    coverage = torch.tensor([[[0.5 - 1e-7, 0.5 - 1e-5], [0.75, 1.0]]])
    assert coverage_to_token_masks(coverage).tolist() == [[True, False, True, True]]
    assert coverage_to_token_masks(coverage, min_coverage=0.8).tolist() == [[False, False, False, True]]
    assert coverage_to_token_masks(torch.zeros(0, 3, 3)).shape == (0, 9)


def test_pad_geometry_counts_padding_as_uncovered():
    # 4 x 2 image padded to a 4 x 4 square (one padding row above and below), target 4, 2 x 2 grid.
    g = ImageGeometry.plan(4, 2, spec("pad"))
    assert (g.pad_left, g.pad_top, g.canvas_w, g.canvas_h) == (0, 1, 4, 4)
    full = torch.ones(1, 2, 4)
    # Every cell holds 2 padding pixels and 2 image pixels of its 4: coverage exactly 1/2.
    assert torch.allclose(_coverage(full, g, grid=2)[0], torch.full((2, 2), 0.5))
    left = torch.zeros(1, 2, 4)
    left[0, :, 0:2] = 1
    assert _tokens(left, g, grid=2)[0].tolist() == [True, False, True, False]


def test_resize_scales_cells_back_to_source_pixels():
    # 8 x 8 image resized to 4 x 4: each token of a 2 x 2 grid is a 4 x 4 source block.
    g = ImageGeometry.plan(8, 8, spec("crop"))
    mask = torch.zeros(1, 8, 8)
    mask[0, 0:4, 4:6] = 1          # half of the top-right block
    mask[0, 4:8, 0:1] = 1          # a quarter of the bottom-left block
    cov = _coverage(mask, g, grid=2)[0]
    assert torch.allclose(cov, torch.tensor([[0.0, 0.5], [0.25, 0.0]]))


def test_coarser_output_grid_pools_with_the_same_rule():
    # C-Abstractor-like: 12 x 12 image, 6 x 6 vision grid, 3 x 3 output grid; same mask, same rule.
    g = ImageGeometry.plan(12, 12, spec("crop", size=12))
    mask = torch.zeros(1, 12, 12)
    mask[0, 0:4, 0:2] = 1          # half of output cell (0, 0) (4 x 4 px), all of vision tokens (0,0),(1,0)
    fine = _tokens(mask, g, grid=6)[0].view(6, 6)
    coarse = _tokens(mask, g, grid=3)[0].view(3, 3)
    assert fine.nonzero().tolist() == [[0, 0], [1, 0]]
    assert coarse.nonzero().tolist() == [[0, 0]]


def test_matches_brute_force_on_random_masks():
    rng = np.random.default_rng(0)
    g = ImageGeometry.plan(30, 20, spec("crop", size=10))   # resize to 15 x 10 (x0.5), crop 2 columns left
    masks = torch.from_numpy(rng.random((3, 20, 30)) > 0.5)
    cov = _coverage(masks, g, grid=5)
    # Each 2 x 2 output cell maps back to a 4 x 4 source block, from source column 4 (crop 2 / 0.5).
    assert (g.resized_w, g.crop_left) == (15, 2)
    blocks = masks[:, :, 4:24].float().reshape(3, 5, 4, 5, 4).mean(dim=(2, 4))
    assert torch.allclose(cov, blocks, atol=1e-6)


def test_rle_path_with_bbox_crop_equals_dense_path():
    rng = np.random.default_rng(1)
    g = ImageGeometry.plan(37, 23, spec("pad", size=16))
    masks = np.zeros((3, 23, 37), dtype=np.uint8)
    masks[0, 3:9, 20:31] = 1
    masks[1] = rng.random((23, 37)) > 0.7
    # masks[2] stays empty
    dense = _dense_coverage(torch.from_numpy(masks), g, grid=4)
    from_rle = rle_coverage([encode_mask_array(m) for m in masks], g, grid=4)
    assert torch.allclose(dense, from_rle, atol=1e-6) and from_rle[2].sum() == 0 and from_rle[0].sum() > 0
    assert torch.equal(rle_token_masks([encode_mask_array(m) for m in masks], g, grid=4),
                       coverage_to_token_masks(from_rle))
