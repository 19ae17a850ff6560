"""PatchSamples -> one padded micro-batch (a dict of tensors the VLM's forward takes).

Keys: `pixel_values` uint8 [B, 3, S, S] (the model normalises them on its device with the processor's
mean/std: a quarter of the bytes through worker pipes and host-to-device copies, no CPU float pass), `input_ids`/`attention_mask`/`labels` [B, L] (right-padded; labels -100 on BOS
and padding), `region_masks` bool [B, R, M], `region_valid` bool [B, R], `tag_ids`/`tag_mask` [B, R, T],
and counters `regions` / `skipped_regions` (scalars) for logging.
"""

from __future__ import annotations

import torch

from trainer.data.patch_sample import PatchSample

IGNORE_INDEX = -100


def normalize_pixels(pixels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> the processor's float input: (x / 255 - mean) / std (mean/std of shape [3])."""
    scale = 1.0 / (255.0 * std.float())
    return pixels.float() * scale.view(1, 3, 1, 1) - (mean.float() / std.float()).view(1, 3, 1, 1)


class PatchCollator:
    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, samples: list[PatchSample]) -> dict[str, torch.Tensor]:
        b = len(samples)
        pixels = torch.stack([s.pixels for s in samples])

        length = max(len(s.input_ids) for s in samples)
        input_ids = torch.full((b, length), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros(b, length, dtype=torch.long)
        for i, s in enumerate(samples):
            input_ids[i, : len(s.input_ids)] = torch.tensor(s.input_ids)
            attention[i, : len(s.input_ids)] = 1
        labels = input_ids.masked_fill(attention == 0, IGNORE_INDEX)
        labels[:, 0] = IGNORE_INDEX  # BOS: LLaVA masks everything up to the end of the image

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
            "pixel_values": pixels, "input_ids": input_ids, "attention_mask": attention, "labels": labels,
            "region_masks": region_masks, "region_valid": region_valid, "tag_ids": tag_ids, "tag_mask": tag_mask,
            "regions": region_valid.sum(), "skipped_regions": torch.tensor(sum(s.skipped_regions for s in samples)),
        }
