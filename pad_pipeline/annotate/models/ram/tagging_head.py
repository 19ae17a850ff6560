"""RAM's query-to-label tagging head: BERT-style layers with cross-attention only (inference only).

Each tag's (projected) label embedding is a query that attends to the projected image tokens; the
official model deletes the layers' self-attention and the word embeddings (Query2Label), so a layer is
cross-attention + residual LayerNorm, then GELU feed-forward + residual LayerNorm, post-norm as in BERT.
The image tokens all attend (no padding), so no attention mask is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class TaggingHeadConfig:
    """RAM's `q2l_config.json`: 2 layers, width 768, 4 heads, keys/values from 512-d image tokens."""

    hidden_size: int = 768
    num_heads: int = 4
    intermediate_size: int = 3072
    num_layers: int = 2
    encoder_width: int = 512
    layer_norm_eps: float = 1e-12


class CrossAttention(nn.Module):
    def __init__(self, cfg: TaggingHeadConfig):
        super().__init__()
        self.num_heads = cfg.num_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.encoder_width, cfg.hidden_size)
        self.value = nn.Linear(cfg.encoder_width, cfg.hidden_size)
        self.out = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.view(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        q, k, v = (self._heads(proj(x)) for proj, x in
                   ((self.query, queries), (self.key, memory), (self.value, memory)))
        out = F.scaled_dot_product_attention(q, k, v)
        b, _, n, _ = out.shape
        return self.out(out.transpose(1, 2).reshape(b, n, -1))


class FeedForward(nn.Module):
    def __init__(self, cfg: TaggingHeadConfig):
        super().__init__()
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class TaggingLayer(nn.Module):
    def __init__(self, cfg: TaggingHeadConfig):
        super().__init__()
        self.cross_attn = CrossAttention(cfg)
        self.norm1 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.ffn = FeedForward(cfg)
        self.norm2 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        x = self.norm1(queries + self.cross_attn(queries, memory))
        return self.norm2(x + self.ffn(x))


class TaggingHead(nn.Module):
    """queries (B, C, hidden), image tokens (B, L, encoder_width) -> (B, C, hidden)."""

    def __init__(self, cfg: TaggingHeadConfig):
        super().__init__()
        self.layers = nn.ModuleList(TaggingLayer(cfg) for _ in range(cfg.num_layers))

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            queries = layer(queries, memory)
        return queries
