"""Grounding DINO's image-text fusion attention run one batch row at a time, so rows stay independent.

Grounding DINO's bi-directional attention (`GroundingDinoBiMultiHeadAttention`, also MM Grounding DINO's)
subtracts the maximum attention logit of the WHOLE batch before its softmaxes (a stabiliser carried over
from GLIP). Mathematically a no-op, it changes the rounding of every row with the values of the other
rows, so a pair's scores would depend on the pairs batched beside it. `make_fusion_rowwise` wraps each
such module so that it sees one row at a time (every other layer still runs the whole batch): the
maximum is then the row's own, as when the pair runs alone. The cost is a few small matmuls per row in
the six fusion layers. Wrapping happens after the weights are loaded (the wrapper adds `.attn` to the
wrapped modules' parameter names) and is idempotent.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class RowwiseAttention(nn.Module):
    """Calls the wrapped fusion attention on each batch row alone and stacks the results."""

    def __init__(self, attn: nn.Module):
        super().__init__()
        self.attn = attn

    def forward(self, vision_features: torch.Tensor, text_features: torch.Tensor,
                vision_attention_mask: torch.Tensor | None = None, text_attention_mask: torch.Tensor | None = None
                ) -> Any:
        outs = []
        for row in range(int(vision_features.shape[0])):
            pick = slice(row, row + 1)
            vision_mask = None if vision_attention_mask is None else vision_attention_mask[pick]
            text_mask = None if text_attention_mask is None else text_attention_mask[pick]
            outs.append(self.attn(vision_features[pick], text_features[pick], vision_attention_mask=vision_mask,
                                  text_attention_mask=text_mask))
        (v, vw), (t, tw) = outs[0]
        if len(outs) == 1:
            return (v, vw), (t, tw)
        return ((torch.cat([o[0][0] for o in outs]), torch.cat([o[0][1] for o in outs])),
                (torch.cat([o[1][0] for o in outs]), torch.cat([o[1][1] for o in outs])))


def make_fusion_rowwise(model: nn.Module) -> int:
    """Wrap every bi-directional fusion attention of `model` in place; returns how many were wrapped."""
    wrapped = 0
    for module in list(model.modules()):
        if isinstance(module, RowwiseAttention):  # already wrapped (a model handed to a second wrapper)
            continue
        for name, child in list(module.named_children()):
            if type(child).__name__.endswith("BiMultiHeadAttention"):
                setattr(module, name, RowwiseAttention(child))
                wrapped += 1
    return wrapped
