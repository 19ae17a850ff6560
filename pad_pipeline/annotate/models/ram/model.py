"""The RAM and RAM++ tagging networks: Swin encoder -> image projection -> label queries -> logits.

RAM scores each tag with one frozen label embedding (CLIP text features of the tag, stored in the
checkpoint as `label_embed`). RAM++ stores `descriptions_per_class` embeddings per tag (51 LLM-written
descriptions) and, per image, averages them with softmax weights given by their similarity to the
image's pooled token (scaled by exp(`reweight_scale`)). In both, the label embeddings pass through
`label_proj` + ReLU and query the image tokens in the tagging head; a linear classifier gives one logit
per tag, and sigmoid(logit) is the tag's score. The caption side of RAM is not part of this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from pad_pipeline.annotate.models.ram.swin import SwinConfig, SwinEncoder, swin_large_config
from pad_pipeline.annotate.models.ram.tagging_head import TaggingHead, TaggingHeadConfig

RAM_PLUS_DESCRIPTIONS = 51
# RAM++'s initial description temperature (CLIP's 1/0.07); a checkpoint stores the trained value, and
# where a released file lacks it the official loader (strict=False) leaves this one (checkpoint.py).
INITIAL_REWEIGHT_SCALE = math.log(1 / 0.07)


@dataclass(frozen=True)
class RamConfig:
    """`descriptions_per_class` 0 is RAM (one embedding per tag); > 0 is RAM++."""

    num_classes: int
    descriptions_per_class: int = 0
    swin: SwinConfig = field(default_factory=swin_large_config)
    head: TaggingHeadConfig = field(default_factory=TaggingHeadConfig)

    @property
    def embed_dim(self) -> int:
        """Width of the shared image/label space (512 in the official models)."""
        return self.head.encoder_width

    @property
    def is_plus(self) -> bool:
        return self.descriptions_per_class > 0


def ram_swin_large_config(num_classes: int, image_size: int = 384) -> RamConfig:
    """ram_swin_large_14m.pth."""
    return RamConfig(num_classes=num_classes, swin=swin_large_config(image_size))


def ram_plus_swin_large_config(num_classes: int, image_size: int = 384) -> RamConfig:
    """ram_plus_swin_large_14m.pth."""
    return RamConfig(num_classes=num_classes, descriptions_per_class=RAM_PLUS_DESCRIPTIONS,
                     swin=swin_large_config(image_size))


def reweighted_label_embeddings(image_cls: torch.Tensor, label_embed: torch.Tensor, num_classes: int,
                                scale: torch.Tensor) -> torch.Tensor:
    """RAM++: (B, E) pooled image tokens, (C * D, E) descriptions -> (B, C, E) per-image tag embeddings.

    Each tag's D description embeddings are averaged with softmax(exp(scale) * <unit image token, d>).
    """
    descriptions = label_embed.view(num_classes, -1, label_embed.shape[-1])  # (C, D, E)
    image_cls = image_cls / image_cls.norm(dim=-1, keepdim=True)
    weights = (scale.exp() * torch.einsum("be,cde->bcd", image_cls, descriptions)).softmax(dim=-1)
    return torch.einsum("bcd,cde->bce", weights.to(descriptions.dtype), descriptions)


class RamModel(nn.Module):
    """pixels (B, 3, S, S), ImageNet-normalised -> tag logits (B, num_classes)."""

    def __init__(self, cfg: RamConfig):
        super().__init__()
        self.cfg = cfg
        self.image_encoder = SwinEncoder(cfg.swin)
        self.image_proj = nn.Linear(cfg.swin.out_dim, cfg.embed_dim)
        rows = cfg.num_classes * max(1, cfg.descriptions_per_class)
        self.label_embed = nn.Parameter(torch.zeros(rows, cfg.embed_dim))
        if cfg.is_plus:
            self.reweight_scale = nn.Parameter(torch.tensor(INITIAL_REWEIGHT_SCALE))
        # The official models have no label projection when the head is already 512 wide.
        needs_proj = cfg.head.hidden_size != cfg.embed_dim
        self.label_proj = nn.Linear(cfg.embed_dim, cfg.head.hidden_size) if needs_proj else nn.Identity()
        self.tagging_head = TaggingHead(cfg.head)
        self.classifier = nn.Linear(cfg.head.hidden_size, 1)

    def label_queries(self, image_cls: torch.Tensor) -> torch.Tensor:
        """(B, E) pooled image tokens -> (B, C, hidden) tag queries of the tagging head."""
        if self.cfg.is_plus:
            # fp32 even under autocast: exp(reweight_scale) sharpens the softmax, bf16 would blur it.
            with torch.autocast(image_cls.device.type, enabled=False):
                labels = reweighted_label_embeddings(image_cls.float(), self.label_embed.float(),
                                                     self.cfg.num_classes, self.reweight_scale.float())
            return F.relu(self.label_proj(labels))
        # RAM's queries do not depend on the image: project once, share across the batch.
        return F.relu(self.label_proj(self.label_embed)).unsqueeze(0).expand(image_cls.shape[0], -1, -1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        image = self.image_proj(self.image_encoder(pixels))  # (B, 1 + L, E); token 0 is the pooled one
        tags = self.tagging_head(self.label_queries(image[:, 0]), image)
        # One image at a time: (tags x hidden) @ (hidden x 1) is a matrix-vector product, and its CPU
        # kernel sums the last rows of a call in another order, so over a whole batch an image's logits
        # would depend on its position in it. Per image, every image gets the same bits anywhere.
        return torch.stack([self.classifier(t).squeeze(-1) for t in tags])
