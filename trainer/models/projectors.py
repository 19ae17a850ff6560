"""Projectors: vision features [B, N, Dv] on a g x g grid -> LLM-space tokens [B, M, D].

`build_projector(kind, vision_dim, llm_dim, ...)` is the factory; the kinds are the names of
`trainer.models.registry.PROJECTORS`, whose builders are the `*_projector` functions below. Every
projector exposes `output_grid(input_grid)` so the data side can pool masks onto the grid it emits:
`linear` and `mlp2x_gelu` (LLaVA-1.5's) keep the grid; `c_abstractor` (Honeybee's convolutional
abstractor: residual conv blocks -> adaptive average pooling -> residual conv blocks -> MLP readout)
emits `num_tokens` tokens on a smaller square grid. `linear` and `mlp2x_gelu` are `nn.Linear` /
`nn.Sequential` so their state-dict keys are LLaVA's (`weight`, `0.weight`, `2.weight`).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from pad_pipeline.core.errors import ConfigError
from trainer.models.registry import PROJECTORS


class LinearProjector(nn.Linear):
    def output_grid(self, input_grid: int) -> int:
        return input_grid


class MlpProjector(nn.Sequential):
    """LLaVA-1.5's `mlp2x_gelu`: Linear -> GELU -> Linear."""

    def __init__(self, vision_dim: int, llm_dim: int):
        super().__init__(nn.Linear(vision_dim, llm_dim), nn.GELU(), nn.Linear(llm_dim, llm_dim))

    def output_grid(self, input_grid: int) -> int:
        return input_grid


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over channels of a [B, C, H, W] map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.expand(F.silu(self.reduce(s))))


class BottleneckBlock(nn.Module):
    """RegNet-style residual bottleneck (1x1 -> 3x3 -> SE -> 1x1), LayerNorm2d + SiLU, as in Honeybee."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 1, bias=False)
        self.norm1 = LayerNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm2 = LayerNorm2d(channels)
        self.se = SqueezeExcite(channels, max(1, channels // 4))
        self.conv3 = nn.Conv2d(channels, channels, 1, bias=False)
        self.norm3 = LayerNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.norm1(self.conv1(x)))
        h = F.silu(self.norm2(self.conv2(h)))
        h = self.norm3(self.conv3(self.se(h)))
        return F.silu(x + h)


class CAbstractor(nn.Module):
    """Honeybee's C-Abstractor: locality-preserving resampling of the vision grid to `num_tokens` tokens."""

    def __init__(self, vision_dim: int, llm_dim: int, num_tokens: int = 256, depth: int = 3,
                 hidden_size: int | None = None, input_tokens: int = 576):
        super().__init__()
        side = math.isqrt(num_tokens)
        if side * side != num_tokens:
            raise ConfigError(f"field 'model.projector.num_tokens': {num_tokens} is not a square number")
        hidden = hidden_size or vision_dim
        self.out_side = side
        self.pos_emb = nn.Parameter(torch.zeros(1, input_tokens, vision_dim))
        nn.init.trunc_normal_(self.pos_emb, std=0.02)
        self.stem = nn.Conv2d(vision_dim, hidden, 1) if hidden != vision_dim else nn.Identity()
        self.pre = nn.Sequential(*[BottleneckBlock(hidden) for _ in range(depth)])
        self.pool = nn.AdaptiveAvgPool2d(side)
        self.post = nn.Sequential(*[BottleneckBlock(hidden) for _ in range(depth)])
        self.readout = nn.Sequential(nn.Linear(hidden, llm_dim), nn.SiLU(), nn.Linear(llm_dim, llm_dim))

    def output_grid(self, input_grid: int) -> int:
        return self.out_side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        g = math.isqrt(n)
        if g * g != n or n != self.pos_emb.shape[1]:
            raise ValueError(f"c_abstractor built for {self.pos_emb.shape[1]} tokens, got {n}")
        x = (x + self.pos_emb).transpose(1, 2).reshape(b, d, g, g)
        x = self.post(self.pool(self.pre(self.stem(x))))
        return self.readout(x.flatten(2).transpose(1, 2))


def linear_projector(vision_dim: int, llm_dim: int, **_: object) -> nn.Module:
    """`linear`: one `nn.Linear` (the c_abstractor options do not apply)."""
    return LinearProjector(vision_dim, llm_dim)


def mlp2x_gelu_projector(vision_dim: int, llm_dim: int, **_: object) -> nn.Module:
    """`mlp2x_gelu`: LLaVA-1.5's projector (the c_abstractor options do not apply)."""
    return MlpProjector(vision_dim, llm_dim)


def c_abstractor_projector(vision_dim: int, llm_dim: int, *, num_tokens: int, depth: int,
                           hidden_size: int | None, input_tokens: int) -> nn.Module:
    """`c_abstractor`: Honeybee's C-Abstractor."""
    return CAbstractor(vision_dim, llm_dim, num_tokens, depth, hidden_size, input_tokens)


def build_projector(kind: str, vision_dim: int, llm_dim: int, *, num_tokens: int = 256, depth: int = 3,
                    hidden_size: int | None = None, input_tokens: int = 576) -> nn.Module:
    """The projector `kind` (a name of PROJECTORS) from vision width to LLM width."""
    builder = PROJECTORS.get(PROJECTORS.check(kind, "model.projector.kind"))
    return builder(vision_dim, llm_dim, num_tokens=num_tokens, depth=depth, hidden_size=hidden_size,
                   input_tokens=input_tokens)


def input_tokens(vision_grid: int, drop_cls: bool) -> int:
    """The tokens the vision tower hands the projector: its grid's patches, plus CLS unless it is dropped."""
    return vision_grid ** 2 + (0 if drop_cls else 1)
