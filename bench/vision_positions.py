"""Can a box be read from the miniature's frozen CLIP tokens? The probe behind `trainer.eval.miniature.vision`.

For each tower (the tiny preset's own random position embeddings, and 2D sine-cosine ones at a few scales),
a small position-agnostic head (4 learned queries attend over the standardised layer -2 patch tokens, then an
MLP) is trained to regress the box of the only shape in single-shape scenes, and scored by Acc@0.5 on
held-out scenes, beside the best constant box. A head that cannot see where a token is can only do as well
as the constant box. Usage: python bench/vision_positions.py [--train 2000] [--heldout 300] [--steps 1500]
[--scales 1,3].
"""

from __future__ import annotations

import argparse
import tempfile

import numpy as np
import torch
from torch import nn
from torchvision.ops import box_iou

from pad_pipeline.dataset.shapes import SyntheticShapesConfig, make_scene
from trainer.config.sections import VisionConfig
from trainer.eval.miniature.vision import write_vision_tower
from trainer.eval.miniature.vision_config import VisionTowerConfig
from trainer.models.loading import load_vision


def scenes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Single-shape scenes as [n, 3, h, w] pixels in [-1, 1] and their [n, 4] boxes as fractions."""
    cfg = SyntheticShapesConfig(out="unused", min_shapes=1, max_shapes=1)
    images, boxes = [], []
    for i in range(n):
        scene = make_scene(np.random.default_rng([seed, i]), cfg)
        ys, xs = np.nonzero(scene.masks[0])
        side = scene.image.shape[0]
        images.append(scene.image)
        boxes.append([xs.min() / side, ys.min() / side, (xs.max() + 1) / side, (ys.max() + 1) / side])
    pixels = torch.tensor(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return pixels, torch.tensor(boxes, dtype=torch.float32)


class QueryHead(nn.Module):
    """4 queries attend over the tokens (no position of their own), an MLP maps what they read to a box."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(4, dim))
        self.keys, self.values = nn.Linear(dim, dim), nn.Linear(dim, 64)
        self.mlp = nn.Sequential(nn.Linear(4 * 64, 128), nn.GELU(), nn.Linear(128, 4))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        attention = torch.einsum("qd,bnd->bqn", self.queries, self.keys(tokens)).softmax(-1)
        return self.mlp(torch.einsum("bqn,bnd->bqd", attention, self.values(tokens)).flatten(1)).sigmoid()


def tokens(folder: str, pixels: torch.Tensor) -> torch.Tensor:
    model = load_vision(VisionConfig(checkpoint=folder))[0]
    with torch.no_grad():
        return model(pixel_values=pixels, output_hidden_states=True).hidden_states[-2][:, 1:]


def probe(folder: str, train: tuple[torch.Tensor, torch.Tensor], heldout: tuple[torch.Tensor, torch.Tensor],
          steps: int) -> float:
    """Acc@0.5 on the held-out scenes of a head trained on the tower's tokens."""
    train_tokens, heldout_tokens = tokens(folder, train[0]), tokens(folder, heldout[0])
    mean, std = train_tokens.mean((0, 1)), train_tokens.std((0, 1)) + 1e-6
    train_tokens, heldout_tokens = (train_tokens - mean) / std, (heldout_tokens - mean) / std
    torch.manual_seed(0)
    head = QueryHead(train_tokens.shape[-1])
    optimizer = torch.optim.Adam(head.parameters(), 3e-3)
    for _ in range(steps):
        batch = torch.randint(0, len(train_tokens), (64,))
        loss = nn.functional.l1_loss(head(train_tokens[batch]), train[1][batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        predicted = head(heldout_tokens)
    return float((box_iou(predicted, heldout[1]).diag() >= 0.5).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--heldout", type=int, default=300)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--scales", default="1,3", help="sine-cosine amplitudes to try")
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    train, heldout = scenes(args.train, 0), scenes(args.heldout, 1)
    constant = train[1].mean(0, keepdim=True).expand_as(heldout[1])
    print(f"constant box (mean of the training boxes): Acc@0.5 "
          f"{float((box_iou(constant, heldout[1]).diag() >= 0.5).float().mean()):.3f}")
    towers = [VisionTowerConfig(positions="random")]
    towers += [VisionTowerConfig(positions="sincos", scale=float(s)) for s in args.scales.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        for cfg in towers:
            write_vision_tower(cfg, tmp, seed=0)
            name = cfg.positions if cfg.positions == "random" else f"sincos x{cfg.scale:g}"
            print(f"tower with {name} positions: Acc@0.5 {probe(tmp, train, heldout, args.steps):.3f}")


if __name__ == "__main__":
    main()
