"""The paper's losses as pure tensor functions: region embeddings, patch alignment (eq. 5), total (eq. 7).

v_p is the mean of the projected tokens a region selects; t_p its tag's text embedding.
`patch_alignment_loss = 1 - mean_p cos(v_p, t_p)` over valid regions (0 when a batch has none);
`total_loss = caption + beta * patch`. Computed in float32 whatever the model dtype.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def region_embeddings(tokens: torch.Tensor, region_masks: torch.Tensor) -> torch.Tensor:
    """Mean selected token per region: tokens [B, M, D], masks bool [B, R, M] -> [B, R, D] (float32)."""
    weights = region_masks.float()
    weights = weights / weights.sum(-1, keepdim=True).clamp(min=1.0)
    return torch.bmm(weights, tokens.float())


def patch_alignment_loss(v: torch.Tensor, t: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """1 - mean cosine(v_p, t_p) over `valid` regions; v, t [B, R, D], valid bool [B, R]."""
    cos = F.cosine_similarity(v.float(), t.float(), dim=-1, eps=1e-6)
    if not bool(valid.any()):
        return (v.sum() * 0.0).float()  # keeps the graph (and DeepSpeed's hooks) uniform across steps
    return 1.0 - cos[valid].mean()


def total_loss(caption: torch.Tensor, patch: torch.Tensor, beta: float) -> torch.Tensor:
    """Paper eq. 7: L = L_caption + beta * L_patch."""
    return caption + beta * patch
