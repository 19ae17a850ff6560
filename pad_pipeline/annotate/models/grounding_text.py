"""Grounding DINO's text side: tags -> prompt chunks under the token limit, and boxes -> one tag each.

A prompt is "tag1 . tag2 . tag3 ." (lower-cased). Grounding DINO reads at most `max_text_len` tokens,
so an image's tags are packed, in order (best first), into as many chunks as needed; every tag is
prompted exactly once and none is silently truncated (a tag too long on its own is dropped and
reported). Each chunk carries the token span of every tag, taken from the tokenizer's offsets.

A predicted box gets ONE tag: the tag whose best token (max sigmoid over its span) scores highest,
never a phrase merged across tags as Grounded-SAM's `get_phrases_from_posmap` can produce.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import torch

SEPARATOR = " . "


@dataclass
class PromptChunk:
    """One prompt: its tags (labels as given), token ids (with special tokens) and each tag's tokens."""

    tags: list[str]
    input_ids: list[int]
    spans: list[list[int]]


def tag_phrase(tag: str) -> str:
    """A tag as prompted: lower-case, single spaces, and no '.'/'?' (Grounding DINO's phrase delimiters)."""
    return " ".join(re.sub(r"[.?]", " ", tag.lower()).split())


def prompt_text(phrases: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """"a . b ." and the character range of each phrase in it."""
    text, ranges = "", []
    for p in phrases:
        ranges.append((len(text), len(text) + len(p)))
        text += p + SEPARATOR
    return text.rstrip(), ranges


def spans_from_offsets(offsets: Sequence[tuple[int, int]], ranges: Sequence[tuple[int, int]]
                       ) -> list[list[int]]:
    """Token indices inside each character range; special tokens (empty offsets) belong to none."""
    spans: list[list[int]] = [[] for _ in ranges]
    for k, (start, end) in enumerate(offsets):
        if end <= start:
            continue
        for j, (lo, hi) in enumerate(ranges):
            if start >= lo and end <= hi:
                spans[j].append(k)
                break
    return spans


def encode_chunk(tags: Sequence[str], tokenizer: Any) -> PromptChunk:
    text, ranges = prompt_text([tag_phrase(t) for t in tags])
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=True)
    return PromptChunk(list(tags), list(enc["input_ids"]), spans_from_offsets(enc["offset_mapping"], ranges))


def chunk_tags(tags: Sequence[str], tokenizer: Any, limit: int) -> tuple[list[PromptChunk], list[str]]:
    """Pack `tags` in order into prompts of at most `limit` tokens; returns (chunks, dropped tags).

    A tag costs its own tokens plus the '.' after it; a chunk also pays for the special tokens. The
    packing is checked on the real encoding and a chunk that still overflows is split in two (this
    only happens with tokenizers whose tokens cross word boundaries).
    """
    tags = list(dict.fromkeys(tags))
    if not tags:
        return [], []
    special = len(tokenizer("", add_special_tokens=True)["input_ids"])
    dot = len(tokenizer(".", add_special_tokens=False)["input_ids"])
    lengths = tokenizer([tag_phrase(t) for t in tags], add_special_tokens=False)["input_ids"]
    capacity = limit - special
    groups: list[list[str]] = []
    dropped: list[str] = []
    used = capacity + 1  # forces a new group for the first tag
    for tag, ids in zip(tags, lengths, strict=True):
        cost = len(ids) + dot
        if not ids or cost > capacity:  # nothing left to prompt, or too long on its own
            dropped.append(tag)
            continue
        if used + cost > capacity:
            groups.append([])
            used = 0
        groups[-1].append(tag)
        used += cost
    chunks: list[PromptChunk] = []
    for group in groups:
        chunks.extend(_encode_within(group, tokenizer, limit, dropped))
    return chunks, dropped


def _encode_within(tags: list[str], tokenizer: Any, limit: int, dropped: list[str]) -> list[PromptChunk]:
    chunk = encode_chunk(tags, tokenizer)
    if len(chunk.input_ids) <= limit:
        return [chunk]
    if len(tags) == 1:
        dropped.append(tags[0])
        return []
    half = len(tags) // 2
    return (_encode_within(tags[:half], tokenizer, limit, dropped)
            + _encode_within(tags[half:], tokenizer, limit, dropped))


def assign_boxes_to_tags(logits: torch.Tensor, spans: Sequence[Sequence[int]], box_threshold: float,
                         text_threshold: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Map each query to one tag from its token logits (Q, T).

    tag score = max sigmoid over the tag's tokens; a query takes its best tag and is kept when that
    score > box_threshold (the box is confident) and > text_threshold (the tag's tokens pass the text
    threshold). Both test the same number here because the label is a single tag; with the paper's
    0.25 / 0.2 the box threshold decides. Returns (keep (Q,) bool, tag index (Q,), score (Q,)).
    """
    n_queries, n_tokens = logits.shape
    n_tags = len(spans)
    if n_tags == 0:
        empty = torch.zeros(n_queries, device=logits.device)
        return empty.bool(), empty.long(), empty
    token_tag = torch.full((n_tokens,), n_tags, dtype=torch.long)  # column n_tags: tokens of no tag
    for j, span in enumerate(spans):
        token_tag[list(span)] = j
    token_tag = token_tag.to(logits.device)
    probs = logits.float().sigmoid()
    tag_scores = torch.zeros(n_queries, n_tags + 1, device=logits.device)
    tag_scores = tag_scores.scatter_reduce(1, token_tag.expand(n_queries, -1), probs, "amax",
                                           include_self=True)
    score, index = tag_scores[:, :n_tags].max(dim=1)
    keep = (score > box_threshold) & (score > text_threshold)
    return keep, index, score
