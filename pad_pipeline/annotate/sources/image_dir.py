"""A folder of images (recursively, sorted), with captions from an optional JSONL file of
`{"file": relative path, "caption": text}` lines (`image` is accepted for `file`)."""

from __future__ import annotations

import json
import posixpath

import fsspec

from pad_pipeline.annotate.config import SourceConfig
from pad_pipeline.annotate.sources.base import SourceItem
from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def _read_captions(url: str) -> dict[str, str]:
    captions = {}
    try:
        with fsspec.open(url, "r", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    captions[str(row.get("file") or row["image"])] = str(row.get("caption", ""))
                except (json.JSONDecodeError, KeyError, AttributeError):
                    raise PadError(f"{url}:{n}: expected {{\"file\": ..., \"caption\": ...}}") from None
    except FileNotFoundError:
        raise PadError(f"{url}: source.captions not found") from None
    return captions


def list_items(cfg: SourceConfig) -> list[SourceItem]:
    fs, root = storage.filesystem(cfg.path)
    if not fs.isdir(root):
        raise PadError(f"{cfg.path}: source.path is not a folder")
    files = sorted(p for p in fs.find(root)
                   if posixpath.splitext(p)[1].lower() in IMAGE_EXTENSIONS
                   and not posixpath.basename(p).startswith("."))
    captions = _read_captions(cfg.captions) if cfg.captions else {}
    items = []
    for p in files:
        rel = posixpath.relpath(p, root)
        items.append(SourceItem(rel, captions.get(rel, ""), storage.join(cfg.path, rel)))
    return items
