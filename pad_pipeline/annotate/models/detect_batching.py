"""Batch-independent batching of Grounding DINO's (image, prompt chunk) pairs: shapes, groups, assembly.

A pair's boxes must not depend on the pairs run beside it. Each pair is therefore padded to a shape
chosen from that pair alone: its processed image goes onto a canvas whose sides are the next multiples
of `canvas_multiple` (zero pixels outside, `pixel_mask` 0 there), and its prompt is padded with [PAD]
to the next length of `token_buckets` (`attention_mask` 0 there). Pairs of one shape run together,
`batch_size` rows per forward pass, a short pass filled with blank rows; a pass of a given shape has
then always the same tensor shapes, so the kernels sum in the same order and a row's output is the
same bits whoever its neighbours are (`preprocess.fill_batch` does the same for the tagger and SAM).

Padding is not free of effect: Grounding DINO's Swin windows and deformable attention see the padded
frame, so a padded pair's boxes differ slightly from the same pair run unpadded (the chain's
`OUTPUT_VERSION` changed with this, so an old build is not resumed by the new chain).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from pad_pipeline.annotate.models.grounding_text import PromptChunk
from pad_pipeline.annotate.ops.transfer import to_device

PairShape = tuple[int, int, int]  # canvas height, canvas width, prompt tokens


@dataclass
class Pair:
    """One (image, prompt chunk) pair: its image's index in the batch and processed pixels (3, h, w)."""

    image: int
    chunk: PromptChunk
    pixels: torch.Tensor


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def token_bucket(length: int, limit: int, smallest: int = 16) -> int:
    """The padded prompt length of a prompt of `length` tokens: the next power of two from `smallest`,
    at most `limit` (a prompt never exceeds the limit: chunking keeps it under)."""
    bucket = smallest
    while bucket < length:
        bucket *= 2
    return min(bucket, limit)


def pair_shape(pixels: torch.Tensor, tokens: int, canvas_multiple: int, text_limit: int) -> PairShape:
    h, w = int(pixels.shape[-2]), int(pixels.shape[-1])
    return round_up(h, canvas_multiple), round_up(w, canvas_multiple), token_bucket(tokens, text_limit)


def group_by_shape(shapes: Sequence[PairShape], batch_size: int) -> list[tuple[PairShape, list[int]]]:
    """Pair indices grouped by shape (first-seen order) and cut into passes of at most `batch_size`."""
    groups: dict[PairShape, list[int]] = {}
    for i, shape in enumerate(shapes):
        groups.setdefault(shape, []).append(i)
    return [(shape, idx[s:s + batch_size]) for shape, idx in groups.items() for s in range(0, len(idx), batch_size)]


@dataclass
class PassInputs:
    """The model inputs of one forward pass (`batch_size` rows; rows past `real` are blank)."""

    pixel_values: torch.Tensor
    pixel_mask: torch.Tensor
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    real: int
    keys: list[tuple[int, ...]]  # each row's token ids and types, for the text cache (known on the host)


def blank_ids(cls_id: int, sep_id: int) -> list[int]:
    """A blank row's prompt: [CLS] [SEP] (then padding), a valid input that no real pair uses."""
    return [cls_id, sep_id]


def assemble_pass(pairs: Sequence[Pair], shape: PairShape, batch_size: int, blank: list[int], pad_id: int,
                  device: torch.device) -> PassInputs:
    """Stack `pairs` (all of `shape`) into `batch_size` rows: canvases, pixel masks, padded prompts."""
    height, width, tokens = shape
    dtype = pairs[0].pixels.dtype
    pixels = torch.zeros(batch_size, 3, height, width, dtype=dtype, device=device)
    pixel_mask = torch.zeros(batch_size, height, width, dtype=torch.long, device=device)
    ids = [p.chunk.input_ids for p in pairs] + [blank] * (batch_size - len(pairs))
    for row, pair in enumerate(pairs):
        h, w = pair.pixels.shape[-2:]
        pixels[row, :, :h, :w] = pair.pixels
        pixel_mask[row, :h, :w] = 1
    pixel_mask[len(pairs):] = 1  # blank rows: a whole (black) canvas
    host_ids = torch.full((batch_size, tokens), pad_id, dtype=torch.long)
    host_mask = torch.zeros(batch_size, tokens, dtype=torch.long)
    for row, row_ids in enumerate(ids):
        host_ids[row, :len(row_ids)] = torch.tensor(row_ids, dtype=torch.long)
        host_mask[row, :len(row_ids)] = 1
    keys = [tuple(r) + (pad_id,) * (tokens - len(r)) + (0,) * tokens for r in ids]  # ids, then types (all 0)
    return PassInputs(pixels, pixel_mask, to_device(host_ids, device), to_device(host_mask, device),
                      len(pairs), keys)
