"""Swin Transformer image encoder of RAM/RAM++ (inference only).

The hierarchy of the official RAM encoder (Microsoft's Swin with windowed attention, relative position
bias, shifted windows in every second block and 2x2 patch merging between stages), returning the
average-pooled token in front of the last stage's tokens: (B, 1 + L, C), the layout RAM's image
projection and tagging head expect. Parameter names follow `checkpoint.KEY_MAP`; the deterministic
buffers (relative position index, shifted-window mask) are rebuilt here and never read from a file.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# The official Swin marks cross-window pairs of a shifted window with -100 (not -inf) before the softmax.
_CROSS_WINDOW_BIAS = -100.0


@dataclass(frozen=True)
class SwinConfig:
    """Shape of the encoder; `swin_large_config` is RAM's Swin-L, the tiny preset a small one."""

    image_size: int = 384
    patch_size: int = 4
    embed_dim: int = 192
    depths: tuple[int, ...] = (2, 2, 18, 2)
    num_heads: tuple[int, ...] = (6, 12, 24, 48)
    window_size: int = 12
    mlp_ratio: float = 4.0
    layer_norm_eps: float = 1e-5

    @property
    def out_dim(self) -> int:
        return self.embed_dim * 2 ** (len(self.depths) - 1)

    def stage_resolution(self, stage: int) -> int:
        return self.image_size // self.patch_size // 2**stage

    def check(self) -> None:
        """Every stage's grid must split into whole windows (and halve evenly before merging)."""
        for stage in range(len(self.depths)):
            res = self.stage_resolution(stage)
            window = min(self.window_size, res)
            if res == 0 or res % window or (stage < len(self.depths) - 1 and res % 2):
                raise ValueError(f"image_size {self.image_size} does not fit a Swin with patch "
                                 f"{self.patch_size}, window {self.window_size}, {len(self.depths)} stages")


def swin_large_config(image_size: int = 384) -> SwinConfig:
    """Swin-L as RAM configures it: window 12 at 384 px, window 7 at 224 px."""
    return SwinConfig(image_size=image_size, window_size=12 if image_size == 384 else 7)


def relative_position_index(window: int) -> torch.Tensor:
    """(w*w, w*w) index into the (2w-1)^2 bias table for every query/key pair of a window."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[..., 0] * (2 * window - 1) + rel[..., 1]


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) -> (B, nW, w*w, C), windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // window) * (w // window), window * window, c)


def window_merge(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of `window_partition`: (B, nW, w*w, C) -> (B, H, W, C)."""
    b, _, _, c = windows.shape
    x = windows.view(b, h // window, w // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def shifted_window_mask(resolution: int, window: int, shift: int) -> torch.Tensor:
    """(nW, w*w, w*w) additive mask: 0 within a region of the rolled image, -100 across regions."""
    regions = torch.zeros(1, resolution, resolution, 1)
    bounds = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for i, hs in enumerate(bounds):
        for j, ws in enumerate(bounds):
            regions[:, hs, ws, :] = i * len(bounds) + j
    ids = window_partition(regions, window)[0, :, :, 0]  # (nW, w*w)
    differs = ids[:, None, :] != ids[:, :, None]
    return torch.zeros(differs.shape).masked_fill(differs, _CROSS_WINDOW_BIAS)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window, plus a learned relative position bias."""

    relative_position_index: torch.Tensor  # a buffer (see __init__)

    def __init__(self, dim: int, window: int, num_heads: int):
        super().__init__()
        self.window, self.num_heads = window, num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window), persistent=False)

    def position_bias(self) -> torch.Tensor:
        n = self.window * self.window
        table = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return table.view(n, n, self.num_heads).permute(2, 0, 1)  # (heads, n, n)

    def forward(self, windows: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """windows (B, nW, n, C); mask (nW, n, n) or None -> (B, nW, n, C)."""
        b, nw, n, c = windows.shape
        qkv = self.qkv(windows).view(b, nw, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).unbind(0)  # each (B, nW, heads, n, d)
        bias = self.position_bias()[None]  # (1, heads, n, n)
        if mask is not None:
            bias = bias + mask[:, None]  # (nW, heads, n, n)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.proj(out.transpose(2, 3).reshape(b, nw, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SwinBlock(nn.Module):
    """Pre-norm (shifted-)window attention and MLP, both residual."""

    def __init__(self, cfg: SwinConfig, dim: int, resolution: int, num_heads: int, shifted: bool, eps: float):
        super().__init__()
        # As in the official encoder: a stage no larger than a window is one unshifted window.
        self.window = min(cfg.window_size, resolution)
        self.shift = self.window // 2 if shifted and resolution > cfg.window_size else 0
        self.resolution = resolution
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = WindowAttention(dim, self.window, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * cfg.mlp_ratio))
        mask = shifted_window_mask(resolution, self.window, self.shift) if self.shift else None
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, length, c = x.shape
        r = self.resolution
        h = self.norm1(x).view(b, r, r, c)
        if self.shift:
            h = torch.roll(h, shifts=(-self.shift, -self.shift), dims=(1, 2))
        h = window_merge(self.attn(window_partition(h, self.window), self.attn_mask), self.window, r, r)
        if self.shift:
            h = torch.roll(h, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + h.reshape(b, length, c)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2x2 neighbourhood -> one token of twice the width (concatenation order as in the official Swin)."""

    def __init__(self, dim: int, resolution: int, eps: float):
        super().__init__()
        self.resolution = resolution
        self.norm = nn.LayerNorm(4 * dim, eps=eps)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        x = x.view(b, self.resolution, self.resolution, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class SwinStage(nn.Module):
    def __init__(self, cfg: SwinConfig, stage: int):
        super().__init__()
        dim, res, eps = cfg.embed_dim * 2**stage, cfg.stage_resolution(stage), cfg.layer_norm_eps
        self.blocks = nn.ModuleList(SwinBlock(cfg, dim, res, cfg.num_heads[stage], i % 2 == 1, eps)
                                    for i in range(cfg.depths[stage]))
        self.downsample = PatchMerging(dim, res, eps) if stage < len(cfg.depths) - 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.downsample(x) if self.downsample is not None else x


class PatchEmbed(nn.Module):
    def __init__(self, cfg: SwinConfig):
        super().__init__()
        self.proj = nn.Conv2d(3, cfg.embed_dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(pixels).flatten(2).transpose(1, 2))


class SwinEncoder(nn.Module):
    """pixels (B, 3, S, S) normalised -> (B, 1 + L, C): mean-pooled token, then the last stage's tokens."""

    def __init__(self, cfg: SwinConfig):
        super().__init__()
        cfg.check()
        self.cfg = cfg
        self.patch_embed = PatchEmbed(cfg)
        self.stages = nn.ModuleList(SwinStage(cfg, i) for i in range(len(cfg.depths)))
        self.norm = nn.LayerNorm(cfg.out_dim, eps=cfg.layer_norm_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        size = self.cfg.image_size
        if tuple(pixels.shape[-2:]) != (size, size):
            raise ValueError(f"Swin expects {size}x{size} pixels, got {tuple(pixels.shape[-2:])}")
        x = self.patch_embed(pixels)
        for stage in self.stages:
            x = stage(x)
        x = self.norm(x)
        return torch.cat([x.mean(dim=1, keepdim=True), x], dim=1)
