"""One PAD sample -> training tensors: the image (uint8, processor geometry), caption ids, region tokens.

`PatchSampleBuilder(...)(sample)` decodes the stored JPEG, applies the processor geometry, tokenizes the
caption with the plain template, decodes each label's RLE mask and reduces it to the tokens of the
projector's output grid that it covers for at least half of their area. Labels that select no token
(or whose tag has no sub-token) are skipped and counted in `skipped_regions`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.io import ImageReadMode, decode_jpeg
from transformers import PreTrainedTokenizerBase

from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.records import Sample
from trainer.data.chat.tokens import plain_caption_tokens
from trainer.data.geometry import ImageGeometry, ProcessorSpec
from trainer.data.patches.masks import rle_token_masks
from trainer.models.text_embeddings import tag_token_ids


@dataclass
class PatchSample:
    key: str
    pixels: torch.Tensor          # uint8 [3, S, S]
    input_ids: list[int]          # [BOS, IMAGE_TOKEN_INDEX] + caption ids (the plain template)
    region_masks: torch.Tensor    # bool [R, grid * grid]
    tag_ids: list[list[int]]      # R lists of sub-token ids
    skipped_regions: int
    labels: list[int]             # IGNORE_INDEX on BOS and the image, then the caption ids


class PatchSampleBuilder:
    """Callable turning a `pad_pipeline.dataset.writer.Sample` into a `PatchSample` (runs in loader workers)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, spec: ProcessorSpec, grid: int,
                 max_caption_tokens: int, min_coverage: float = 0.5, max_regions: int = 64):
        self.tokenizer = tokenizer
        self.spec = spec
        self.grid = grid
        self.max_caption_tokens = max_caption_tokens
        self.min_coverage = min_coverage
        self.max_regions = max_regions
        self._tag_cache: dict[str, list[int]] = {}

    def _tag_ids(self, tag: str) -> list[int]:
        ids = self._tag_cache.get(tag)
        if ids is None:
            ids = self._tag_cache[tag] = tag_token_ids(self.tokenizer, tag)
        return ids

    def __call__(self, sample: Sample) -> PatchSample:
        record = sample.record
        try:
            image = decode_jpeg(torch.frombuffer(bytearray(sample.image), dtype=torch.uint8), mode=ImageReadMode.RGB)
        except RuntimeError as e:
            raise PadError(f"sample {sample.key}: image does not decode ({e})") from None
        height, width = image.shape[1:]
        if record.size != [width, height]:
            raise PadError(f"sample {sample.key}: record size {record.size} != image size {[width, height]}")
        geometry = ImageGeometry.plan(width, height, self.spec)
        pixels = geometry.apply(image, self.spec)
        caption = plain_caption_tokens(self.tokenizer, record.caption, self.max_caption_tokens)

        labels = record.labels[: self.max_regions]
        skipped = len(record.labels) - len(labels)
        tag_ids = [self._tag_ids(label.tag) for label in labels]
        if labels:
            token_masks = rle_token_masks([lb.rle_mask for lb in labels], geometry, self.grid, self.min_coverage)
            keep = token_masks.any(1) & torch.tensor([len(t) > 0 for t in tag_ids])
            skipped += int((~keep).sum())
            token_masks = token_masks[keep]
            tag_ids = [t for t, k in zip(tag_ids, keep.tolist(), strict=True) if k]
        else:
            token_masks = torch.zeros(0, self.grid * self.grid, dtype=torch.bool)
        return PatchSample(sample.key, pixels, caption.input_ids, token_masks, tag_ids, skipped, caption.labels)
