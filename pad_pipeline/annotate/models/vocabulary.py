"""A tagger's vocabulary: tag list, per-tag thresholds and deny list, and the choice of tags per image.

Shared by every tagger (CLIP, RAM, RAM++). The tag list (one tag per line; for RAM, line i is the
checkpoint's class i) and the per-tag thresholds (one float per line, same order) are read from the
manifest's paths or fsspec URLs by one reader. A tag is kept when its score > its threshold; a global
`threshold` replaces every per-tag one, and without either the tagger's own default applies. Tags on
the `deny_list` (case-insensitive; names not in the vocabulary are ignored, so one list can serve
several vocabularies) are never emitted. Kept tags are ordered by descending score, the order the
detector is prompted in, and cut to `max_tags`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Sequence

import fsspec
import numpy as np
import torch

from pad_pipeline.annotate.config import TaggerConfig
from pad_pipeline.annotate.models.base import TagResult
from pad_pipeline.core.errors import ConfigError

TAG_LIST_FIELD = "models.tagger.tag_list"
THRESHOLDS_FIELD = "models.tagger.tag_thresholds"


@dataclass(frozen=True)
class Vocabulary:
    """Aligned per-tag arrays: tag names, thresholds (C,) float32, denied (C,) bool."""

    tags: list[str]
    thresholds: torch.Tensor
    denied: torch.Tensor

    def __len__(self) -> int:
        return len(self.tags)


def read_lines(url: str, field: str) -> list[str]:
    """Stripped lines of a local path or fsspec URL (`s3://`, `memory://`...); trailing blank lines
    are dropped, a blank line inside is an error: it would shift the tag <-> threshold alignment."""
    try:
        with fsspec.open(url, "r", encoding="utf-8") as f:
            lines = [line.strip() for line in f.read().splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"field '{field}': cannot read {url!r} ({exc})") from None
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise ConfigError(f"field '{field}': {url} is empty")
    if "" in lines:
        raise ConfigError(f"field '{field}': {url} line {lines.index('') + 1} is blank (one entry per line)")
    return lines


def read_tag_list(url: str) -> list[str]:
    return read_lines(url, TAG_LIST_FIELD)


def packaged_tags() -> list[str]:
    """The packaged generic vocabulary (`pad_pipeline/data/default_tags.txt`): the CLIP tagger's
    default, the tiny-random RAM's classes and the tiny tokenizers' whole words."""
    text = resources.files("pad_pipeline").joinpath("data/default_tags.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_thresholds(url: str, num_tags: int) -> torch.Tensor:
    """Per-tag thresholds, exactly one per tag of the list."""
    lines = read_lines(url, THRESHOLDS_FIELD)
    if len(lines) != num_tags:
        raise ConfigError(f"field '{THRESHOLDS_FIELD}': {url} has {len(lines)} thresholds for {num_tags} tags")
    values = []
    for i, line in enumerate(lines):
        try:
            values.append(float(line))
        except ValueError:
            raise ConfigError(f"field '{THRESHOLDS_FIELD}': {url} line {i + 1}: {line!r} is not a number") from None
    return torch.tensor(values, dtype=torch.float32)


def build_vocabulary(tags: Sequence[str], cfg: TaggerConfig, default_threshold: float) -> Vocabulary:
    """Thresholds (global override, else the per-tag file, else `default_threshold`) and the deny mask."""
    tags = list(tags)
    if cfg.threshold is not None:
        thresholds = torch.full((len(tags),), float(cfg.threshold))
    elif cfg.tag_thresholds is not None:
        thresholds = read_thresholds(cfg.tag_thresholds, len(tags))
    else:
        thresholds = torch.full((len(tags),), default_threshold)
    deny = {t.strip().lower() for t in cfg.deny_list}
    denied = torch.tensor([t.lower() in deny for t in tags], dtype=torch.bool)
    return Vocabulary(tags, thresholds, denied)


def select_tags(scores: torch.Tensor, vocab: Vocabulary, max_tags: int) -> list[TagResult]:
    """(B, C) scores -> per image the tags above threshold and not denied, best first (pure).

    Ties keep the vocabulary order; a tag listed twice in the vocabulary is emitted once. One host
    sync: the scores are copied to the host once and selected there.
    """
    host = scores.float().cpu().numpy()  # the one device read of the tagger (numpy from here on)
    keep = (host > vocab.thresholds.numpy()) & ~vocab.denied.numpy()
    results = []
    for row, mask in zip(host, keep, strict=True):
        idx = np.flatnonzero(mask)
        order = idx[np.argsort(-row[idx], kind="stable")].tolist()
        tags: list[str] = []
        values: list[float] = []
        for i in order:
            if len(tags) == max_tags:
                break
            if vocab.tags[i] not in tags:
                tags.append(vocab.tags[i])
                values.append(float(row[i]))
        results.append(TagResult(tags, values))
    return results
