"""Tiny random-weight RAM / RAM++ (`checkpoint: tiny-random`): the same classes, small shapes.

A 2-stage Swin (width 16, window 4, shifted windows in both stages), a one-layer tagging head of
width 32 over a 16-d image/label space and, for RAM++, 3 descriptions per tag. Every parameter is
drawn from a seeded generator (LayerNorms near identity, not exactly identity, so a swapped weight
is visible in the output); the caller's RNG is left untouched.
"""

from __future__ import annotations

import torch
from torch import nn

from pad_pipeline.annotate.models.ram.model import RamConfig, RamModel
from pad_pipeline.annotate.models.ram.swin import SwinConfig
from pad_pipeline.annotate.models.ram.tagging_head import TaggingHeadConfig
from pad_pipeline.core.runtime import seeded

TINY_DESCRIPTIONS = 3


def tiny_ram_config(num_classes: int, image_size: int, plus: bool) -> RamConfig:
    swin = SwinConfig(image_size=image_size, patch_size=4, embed_dim=16, depths=(2, 2), num_heads=(1, 2),
                      window_size=4)
    head = TaggingHeadConfig(hidden_size=32, num_heads=2, intermediate_size=64, num_layers=1,
                             encoder_width=16)
    return RamConfig(num_classes=num_classes, descriptions_per_class=TINY_DESCRIPTIONS if plus else 0,
                     swin=swin, head=head)


@torch.no_grad()
def _randomize(model: RamModel) -> None:
    # Linear layers keep PyTorch's (seeded, non-zero) default init; the rest would start constant.
    for module in model.modules():
        if isinstance(module, nn.LayerNorm):
            module.weight.copy_(1 + 0.1 * torch.randn_like(module.weight))
            module.bias.copy_(0.1 * torch.randn_like(module.bias))
    for name, param in model.named_parameters():
        if name.endswith("relative_position_bias_table"):
            param.copy_(0.5 * torch.randn_like(param))
        elif name == "label_embed":
            param.copy_(torch.randn_like(param))


def tiny_ram(num_classes: int, image_size: int, plus: bool, seed: int) -> RamModel:
    """A deterministic random-weight model: the same `seed` gives the same weights."""
    with seeded(seed):
        model = RamModel(tiny_ram_config(num_classes, image_size, plus))
        _randomize(model)
    return model.eval()
