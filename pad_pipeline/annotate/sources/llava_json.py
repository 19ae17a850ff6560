"""LLaVA pretraining JSON (`blip_laion_cc_sbu_558k.json`): a list of
`{"id", "image", "conversations": [{"from": "human", ...}, {"from": "gpt", "value": CAPTION}]}`.
Image paths are relative to `source.image_root` (local folder or fsspec URL); a path that resolves
outside it is the named failure `outside_root` (`sources.guard`). A file that is not UTF-8 JSON, or an
entry of another shape (no `image` string, `conversations` that is not a list of objects), is a one-line
error naming the entry, before anything is planned.
"""

from __future__ import annotations

import json
from typing import Any

import fsspec

from pad_pipeline.annotate.config import SourceConfig
from pad_pipeline.annotate.sources.base import SourceItem
from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError


def _caption(entry: dict[str, Any], where: str) -> str:
    turns = entry.get("conversations") or []
    if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
        raise PadError(f"{where}: 'conversations' must be a list of {{\"from\", \"value\"}} objects, "
                       f"got {type(turns).__name__}")
    for turn in reversed(turns):
        if turn.get("from") == "gpt":
            return str(turn.get("value", "")).strip()
    return ""


def _load(path: str) -> Any:
    try:
        with fsspec.open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise PadError(f"{path}: source.path not found") from None
    except json.JSONDecodeError as e:
        raise PadError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except UnicodeDecodeError as e:
        raise PadError(f"{path}: not UTF-8 (byte {e.object[e.start]:#04x} near offset {e.start}); JSON must "
                       "be UTF-8: re-save the file as UTF-8") from None


def list_items(cfg: SourceConfig) -> list[SourceItem]:
    entries = _load(cfg.path)
    if not isinstance(entries, list):
        raise PadError(f"{cfg.path}: expected a JSON list of LLaVA entries")
    root = cfg.image_root or storage.join(cfg.path.rsplit("/", 1)[0] if "/" in cfg.path else ".")
    items = []
    for i, entry in enumerate(entries):
        where = f"{cfg.path}: entry {i}"
        if not isinstance(entry, dict) or not entry.get("image"):
            raise PadError(f"{where} has no 'image' field")
        if not isinstance(entry["image"], str):
            raise PadError(f"{where}: 'image' must be a path string, got {type(entry['image']).__name__}")
        items.append(SourceItem(entry["image"], _caption(entry, where), storage.join(root, entry["image"])))
    return items
