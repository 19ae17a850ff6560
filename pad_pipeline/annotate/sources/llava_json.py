"""LLaVA pretraining JSON (`blip_laion_cc_sbu_558k.json`): a list of
`{"id", "image", "conversations": [{"from": "human", ...}, {"from": "gpt", "value": CAPTION}]}`.
Image paths are relative to `source.image_root` (local folder or fsspec URL)."""

from __future__ import annotations

import json

import fsspec

from pad_pipeline.annotate.config import SourceConfig
from pad_pipeline.annotate.sources.base import SourceItem
from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError


def _caption(entry: dict) -> str:
    for turn in reversed(entry.get("conversations") or []):
        if turn.get("from") == "gpt":
            return str(turn.get("value", "")).strip()
    return ""


def list_items(cfg: SourceConfig) -> list[SourceItem]:
    try:
        with fsspec.open(cfg.path, "r", encoding="utf-8") as f:
            entries = json.load(f)
    except FileNotFoundError:
        raise PadError(f"{cfg.path}: source.path not found") from None
    except json.JSONDecodeError as e:
        raise PadError(f"{cfg.path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(entries, list):
        raise PadError(f"{cfg.path}: expected a JSON list of LLaVA entries")
    root = cfg.image_root or storage.join(cfg.path.rsplit("/", 1)[0] if "/" in cfg.path else ".")
    items = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("image"):
            raise PadError(f"{cfg.path}: entry {i} has no 'image' field")
        image = str(entry["image"])
        items.append(SourceItem(image, _caption(entry), storage.join(root, image)))
    return items
