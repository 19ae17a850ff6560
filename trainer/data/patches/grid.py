"""The trainer's view of a sample for `pad show --grid`: its image geometry, token grid and token sets.

It lives in the trainer (pad_pipeline imports trainer only in `cli.py`): `pad show` receives a
`TokenGrid` from the CLI and only calls its methods (`geometry`, `describe`, `label_tokens`).

`TokenGrid` holds what decides which vision tokens a region selects: the CLIP processor's geometry
(`trainer.data.geometry.ProcessorSpec`), the projector's output grid, the half-area threshold and how
many labels the trainer keeps. `default_token_grid()` is LLaVA-1.5's CLIP ViT-L/14-336 (resize +
centre crop to 336 px, a 24 x 24 grid); `token_grid_from_manifest(path)` reads a `pad pretrain`
manifest (processor and vision config only; no weights). `TokenGrid.label_tokens` selects the tokens with the
trainer's own function (`trainer.data.patches.masks.rle_token_masks`), never a copy of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch

from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.records import SampleRecord
from trainer.data.geometry import ImageGeometry, ProcessorSpec
from trainer.data.patches.masks import rle_token_masks

VIT_L14_336 = "openai/clip-vit-large-patch14-336"


@dataclass(frozen=True)
class TokenGrid:
    spec: ProcessorSpec
    grid: int
    min_coverage: float = 0.5
    max_regions: int | None = None   # the trainer keeps the first N labels of a sample
    name: str = VIT_L14_336

    def geometry(self, record: SampleRecord) -> ImageGeometry:
        return ImageGeometry.plan(record.width, record.height, self.spec)

    def label_tokens(self, record: SampleRecord) -> torch.Tensor:
        """Bool [L, grid * grid]: the tokens each label of `record` selects, as the trainer computes them
        (labels past `max_regions`, which the trainer drops, select none)."""
        labels = record.labels
        kept = labels[: self.max_regions] if self.max_regions else labels
        out = torch.zeros(len(labels), self.grid ** 2, dtype=torch.bool)
        if kept:
            out[: len(kept)] = rle_token_masks([lb.rle_mask for lb in kept], self.geometry(record),
                                               self.grid, self.min_coverage)
        return out

    def describe(self) -> str:
        return (f"{self.name}: {self.spec.aspect} to {self.spec.crop} px, {self.grid}x{self.grid} tokens, "
                f"a token belongs to a region covering >= {self.min_coverage:g} of it")


def _clip_processor(size: int):
    from transformers import CLIPImageProcessor

    # The processor settings of openai/clip-vit-large-patch14-336 (OpenAI mean/std, bicubic): no download.
    return CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


def default_token_grid(aspect: str = "crop") -> TokenGrid:
    """LLaVA-1.5's vision tower: CLIP ViT-L/14 at 336 px, patch 14 -> 24 x 24 tokens."""
    return TokenGrid(ProcessorSpec.from_processor(_clip_processor(336), aspect), 336 // 14)  # type: ignore[arg-type]


def _vision_parts(checkpoint: str, revision: str | None):
    """(image processor, vision config) of a `model.vision.checkpoint`; configs only, no weights."""
    from pad_pipeline.core.runtime import TINY_RANDOM

    if checkpoint == TINY_RANDOM:
        from trainer.models import tiny

        return tiny.tiny_image_processor(), tiny.tiny_vision_config()
    from transformers import CLIPImageProcessor, CLIPVisionConfig

    try:
        return (CLIPImageProcessor.from_pretrained(checkpoint, revision=revision or "main"),
                CLIPVisionConfig.from_pretrained(checkpoint, revision=revision or "main"))
    except (OSError, ValueError) as e:
        raise PadError(f"field 'model.vision.checkpoint': cannot load the processor of {checkpoint!r} "
                       f"({type(e).__name__}); log in or pass a local path") from None


def token_grid_from_manifest(path: str, overrides: Iterable[str] = ()) -> TokenGrid:
    """The token grid a `pad pretrain` manifest trains on: its vision tower's processor and patch grid,
    its projector's output grid, `data.image_aspect`, `data.min_coverage` and `data.max_regions`."""
    from trainer.config.pretrain import load_pretrain_config
    from trainer.models.projectors import build_projector, input_tokens

    cfg = load_pretrain_config(path, overrides)
    processor, vcfg = _vision_parts(cfg.model.vision.checkpoint, cfg.model.vision.revision)
    vision_grid = vcfg.image_size // vcfg.patch_size
    p = cfg.model.projector
    # The projector's own output_grid, on a throwaway projector of width 4 (the grid does not depend on it).
    projector = build_projector(p.kind, 4, 4, num_tokens=p.num_tokens, depth=0, hidden_size=4,
                                input_tokens=input_tokens(vision_grid, cfg.model.vision.drop_cls))
    spec = ProcessorSpec.from_processor(processor, cfg.data.image_aspect)
    output_grid = int(projector.output_grid(vision_grid))  # type: ignore[operator]
    return TokenGrid(spec, output_grid, cfg.data.min_coverage, cfg.data.max_regions,
                     f"{cfg.model.vision.checkpoint} + {p.kind} ({path})")

