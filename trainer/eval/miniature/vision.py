"""The miniature's CLIP tower: tiny random weights whose patch tokens know where they are.

A pretrained CLIP's patch tokens carry their position strongly enough to read a box from them. The tiny
preset's random position embeddings (std 0.02, norm 0.11 per patch) are over 10x weaker than its patch
embeddings (norm 1.5), and a frozen tower built that way hides where anything is: a head regressing a lone
shape's box from its layer -2 tokens scores Acc@0.5 0.017 (a constant box: 0.023), and 0.78 once the
positions are 2D sine-cosine at scale 3 (`bench/vision_positions.py`). A REC model cannot learn where a shape
is from such a tower, so the miniature gives its frozen tower what a real one has:
`write_vision_tower(cfg, folder, seed)` builds the tiny preset's CLIPVisionModel with seed `seed`, sets its
position embeddings (`sincos_positions`), and writes it with its image processor via `save_pretrained`, which
`model.vision.checkpoint: folder` then loads through `trainer.models.loading.load_vision`. `tower.json`,
written last, marks the folder complete.
"""

from __future__ import annotations

import os

import torch

from trainer.eval.miniature.marker import is_marked, write_marker
from trainer.eval.miniature.vision_config import VisionTowerConfig
from trainer.models import tiny

DONE_FILE = "tower.json"


def sincos_positions(grid: int, dim: int, scale: float) -> torch.Tensor:
    """[1 + grid*grid, dim] position embeddings: a zero row for CLS, then patches in row-major order, each
    the concatenation of sin/cos of its column (first half) and row (second half) at dim/4 frequencies
    100^(-k/(dim/4)), k = 0..dim/4-1: the 2D form of the Transformer's encoding (as in MAE), with a base of
    100, not 10000, since a grid of a few patches needs no slower waves and a tiny width has few channels."""
    if dim % 4:
        raise ValueError(f"2D sine-cosine positions need a width divisible by 4, got {dim}")
    quarter = dim // 4
    freqs = 1.0 / 100.0 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")

    def encode(coord: torch.Tensor) -> torch.Tensor:
        angles = coord.reshape(-1, 1).double() * freqs
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    patches = torch.cat([encode(cols), encode(rows)], dim=1) * scale
    return torch.cat([torch.zeros(1, dim, dtype=torch.float64), patches]).float()


def is_done(folder: str, cfg: VisionTowerConfig, seed: int) -> bool:
    return is_marked(os.path.join(folder, DONE_FILE), cfg, seed)


def write_vision_tower(cfg: VisionTowerConfig, folder: str, seed: int) -> None:
    model = tiny.tiny_vision_model(seed)
    if cfg.positions == "sincos":
        positions = sincos_positions(tiny.TINY_IMAGE_SIZE // tiny.TINY_PATCH_SIZE, model.config.hidden_size, cfg.scale)
        with torch.no_grad():
            model.embeddings.position_embedding.weight.copy_(positions)
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder)
    tiny.tiny_image_processor().save_pretrained(folder)
    write_marker(os.path.join(folder, DONE_FILE), cfg, seed)
