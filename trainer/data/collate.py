"""Samples -> one padded micro-batch (a dict of tensors the VLM's forward takes), for both stages.

Common keys: `pixel_values` uint8 [N, 3, S, S] (the model normalises them on its device with the processor's
mean/std: a quarter of the bytes through worker pipes and host-to-device copies, no CPU float pass),
`input_ids` / `attention_mask` / `labels` [B, L] (right-padded; `IMAGE_TOKEN_INDEX` marks where image i's
tokens go, images in order of appearance; labels IGNORE_INDEX wherever no loss is taken).
`PatchCollator` (stage 1) adds `region_masks` bool [B, R, M], `region_valid` bool [B, R], `tag_ids` /
`tag_mask` [B, R, T], and counters `regions` / `skipped_regions`. `SftCollator` (stage 2) keeps text-only
samples without an image; a micro-batch with no image at all carries one unused blank image so every rank
runs the vision tower and projector each step (ZeRO-3 gathers must match across ranks); it counts `samples`,
`skipped_samples`, `target_tokens`, `tokens` (image tokens included) and `positions` (the padded batch the
LLM runs: rows x longest row), and lists the bad samples under `bad` (not a tensor).
"""

from __future__ import annotations

from typing import Sequence, cast

import torch

from trainer.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from trainer.data.chat.conversations import BadSample
from trainer.data.chat.sample import SftSample
from trainer.data.patches.sample import PatchSample


def pad_tokens(ids: Sequence[list[int]], labels: Sequence[list[int]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-padded `input_ids`, `attention_mask` and `labels` [B, L]."""
    length = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), length), pad_token_id, dtype=torch.long)
    attention = torch.zeros(len(ids), length, dtype=torch.long)
    target = torch.full((len(ids), length), IGNORE_INDEX, dtype=torch.long)
    for i, (x, y) in enumerate(zip(ids, labels, strict=True)):
        input_ids[i, : len(x)] = torch.tensor(x)
        attention[i, : len(x)] = 1
        target[i, : len(y)] = torch.tensor(y)
    return {"input_ids": input_ids, "attention_mask": attention, "labels": target}


class PatchCollator:
    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, samples: list[PatchSample]) -> dict[str, torch.Tensor]:
        b = len(samples)
        batch = {"pixel_values": torch.stack([s.pixels for s in samples]),
                 **pad_tokens([s.input_ids for s in samples], [s.labels for s in samples], self.pad_token_id)}
        tokens = samples[0].region_masks.shape[1]
        regions = max(1, max(len(s.tag_ids) for s in samples))
        tag_len = max([1] + [len(t) for s in samples for t in s.tag_ids])
        region_masks = torch.zeros(b, regions, tokens, dtype=torch.bool)
        region_valid = torch.zeros(b, regions, dtype=torch.bool)
        tag_ids = torch.zeros(b, regions, tag_len, dtype=torch.long)
        tag_mask = torch.zeros(b, regions, tag_len, dtype=torch.bool)
        for i, s in enumerate(samples):
            r = len(s.tag_ids)
            region_masks[i, :r] = s.region_masks
            region_valid[i, :r] = True
            for j, ids in enumerate(s.tag_ids):
                tag_ids[i, j, : len(ids)] = torch.tensor(ids)
                tag_mask[i, j, : len(ids)] = True
        return {
            **batch, "region_masks": region_masks, "region_valid": region_valid, "tag_ids": tag_ids,
            "tag_mask": tag_mask, "regions": region_valid.sum(),
            "skipped_regions": torch.tensor(sum(s.skipped_regions for s in samples)),
        }


class SftCollator:
    def __init__(self, pad_token_id: int, image_size: int, image_tokens: int):
        self.pad_token_id, self.image_size, self.image_tokens = pad_token_id, image_size, image_tokens

    def __call__(self, items: list[SftSample | BadSample]) -> dict[str, object]:
        samples = [s for s in items if isinstance(s, SftSample)]
        bad = [s for s in items if isinstance(s, BadSample)]
        if samples:
            batch: dict[str, object] = dict(pad_tokens([s.input_ids for s in samples], [s.labels for s in samples],
                                                       self.pad_token_id))
        else:  # every sample was skipped: one pad token, no target (the step still runs, in lock-step)
            batch = {"input_ids": torch.full((1, 1), self.pad_token_id), "attention_mask": torch.ones(1, 1).long(),
                     "labels": torch.full((1, 1), IGNORE_INDEX)}
        images = [s.pixels for s in samples if s.pixels is not None]
        blank = torch.zeros(1, 3, self.image_size, self.image_size, dtype=torch.uint8)
        batch["pixel_values"] = torch.stack(images) if images else blank
        ids, labels, attention = (cast(torch.Tensor, batch[k]) for k in ("input_ids", "labels", "attention_mask"))
        extra = (ids == IMAGE_TOKEN_INDEX).sum(1) * (self.image_tokens - 1)  # an image is image_tokens positions
        lengths = attention.sum(1) + extra
        batch.update(samples=torch.tensor(len(samples)), skipped_samples=torch.tensor(len(bad)),
                     target_tokens=(labels != IGNORE_INDEX).sum(), tokens=lengths.sum(),
                     positions=lengths.max() * len(lengths), bad=bad)
        return batch
