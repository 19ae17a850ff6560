"""Reuse of Grounding DINO's text encoding: a prompt chunk seen before is not encoded again.

Grounding DINO runs its BERT text backbone on every (image, prompt chunk) pair. BERT contextualises a
whole prompt, so the only encoding that can be shared is that of an identical chunk: the same tags in
the same order, which happens for images with the same tag set (across the pairs of a shard).
`CachingTextBackbone` wraps the model's text backbone: it encodes each distinct row of a call once, and
keeps the last `capacity` encodings (least recently used out) on the device.

A row's key is its token ids and token types, padding included: the block attention mask and position
ids Grounding DINO derives from the ids (and passes in here) are then identical too. Each new row is
encoded on its own (a batch of one), so an encoding is the same bits whichever rows it was asked for
with, and a reused encoding equals a fresh one bit for bit (the detector runs one pair per forward, so
a row is always alone anyway). The cache is for inference only: it assumes frozen weights.
At the default capacity it holds at most 256 x 256 tokens x hidden size (about 100 MB for BERT-base in
bf16) on the device.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput


@dataclass
class TextCacheStats:
    """Counts since the cache was built (reported through the detector's `stats()`)."""

    rows: int = 0  # rows asked for
    encoded: int = 0  # rows actually run through the backbone

    @property
    def reuse(self) -> float:
        return 1.0 - self.encoded / self.rows if self.rows else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"rows": self.rows, "encoded": self.encoded, "reuse": round(self.reuse, 4)}


class CachingTextBackbone(nn.Module):
    """Drop-in for `GroundingDinoModel.text_backbone`; see the module docstring."""

    def __init__(self, backbone: nn.Module, capacity: int):
        super().__init__()
        self.backbone = backbone
        self.capacity = capacity
        self.cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self.stats = TextCacheStats()
        self._next_keys: list[tuple] | None = None
        self._real = 0

    def expect(self, keys: list[tuple], real: int) -> None:
        """The row keys of the next call, known on the host (saves reading the ids back from the device);
        rows past `real` are blank fillers, left out of the stats."""
        self._next_keys, self._real = keys, real

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                return_dict: bool | None = None, **kwargs: Any) -> BaseModelOutput:
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        keys, self._next_keys = self._next_keys, None
        real = self._real
        if keys is None or len(keys) != input_ids.shape[0]:  # one host copy of the ids to key the rows
            keys = [tuple(ids) + tuple(types) for ids, types in
                    zip(input_ids.tolist(), token_type_ids.tolist(), strict=True)]
            real = len(keys)
        self.stats.rows += real
        fresh: dict[tuple, torch.Tensor] = {}
        for row, key in enumerate(keys):
            if key in self.cache or key in fresh:
                continue
            pick = slice(row, row + 1)
            out = self.backbone(input_ids[pick], attention_mask[pick] if attention_mask is not None else None,
                                token_type_ids[pick], position_ids[pick] if position_ids is not None else None,
                                return_dict=True, **kwargs)
            self.stats.encoded += int(row < real)
            fresh[key] = out.last_hidden_state[0]
        rows_out = []
        for k in keys:
            hidden = fresh.get(k)
            if hidden is None:
                hidden = self.cache[k]
                self.cache.move_to_end(k)
            rows_out.append(hidden)
        for k, hidden in fresh.items():
            self._remember(k, hidden)
        return BaseModelOutput(last_hidden_state=torch.stack(rows_out))

    def _remember(self, key: tuple, hidden: torch.Tensor) -> None:
        if self.capacity <= 0:
            return
        self.cache[key] = hidden
        self.cache.move_to_end(key)
        while len(self.cache) > self.capacity:
            self.cache.popitem(last=False)
