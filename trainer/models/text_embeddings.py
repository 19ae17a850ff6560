"""A label's text embedding (paper eq. 2): the mean LLM input embedding of the tag's sub-tokens.

Tags are tokenized without BOS on the data side (`tag_token_ids`); the average is taken on the
model side from the frozen embedding matrix (`tag_embeddings`), so loader workers never hold it.
"""

from __future__ import annotations

from typing import Callable

import torch
from transformers import PreTrainedTokenizerBase


def tag_token_ids(tokenizer: PreTrainedTokenizerBase, tag: str) -> list[int]:
    """Sub-token ids of `tag` without special tokens (no BOS)."""
    return tokenizer(tag.strip(), add_special_tokens=False).input_ids


def tag_embeddings(embedding: torch.Tensor | Callable[[torch.Tensor], torch.Tensor], token_ids: torch.Tensor,
                   token_mask: torch.Tensor) -> torch.Tensor:
    """Mean input embedding over valid sub-tokens: ids/mask [..., T] -> [..., D] (float32).

    `embedding` is the [V, D] matrix or the embedding module (a module call also works when ZeRO-3
    partitions the matrix). Rows with no valid sub-token give zeros (callers skip them)."""
    looked_up = embedding[token_ids] if isinstance(embedding, torch.Tensor) else embedding(token_ids)
    vectors = looked_up.float() * token_mask[..., None]
    count = token_mask.sum(-1, keepdim=True).clamp(min=1).float()
    return vectors.sum(-2) / count
