"""A folder of images (recursively, sorted), with captions from an optional JSONL file of
`{"file": relative path, "caption": text}` lines (`image` is accepted for `file`).

A file whose name is not valid UTF-8 cannot be named in a UTF-8 record: it is listed under its name with
the bad bytes escaped (`\\xe9`) and planned as the named failure `undecodable_name`, never read. An entry
that is not a regular file (a FIFO, a socket, a device) is planned as the named failure `not_a_file`,
never opened (opening a FIFO would block the run).
"""

from __future__ import annotations

import json
import os
import posixpath
from typing import Any

import fsspec

from pad_pipeline.annotate.config import SourceConfig
from pad_pipeline.annotate.sources.base import IMAGE_EXTENSIONS, NOT_A_FILE, SourceItem
from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError

UNDECODABLE_NAME = "undecodable_name"


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
    except UnicodeDecodeError as e:
        raise PadError(f"{url}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start} of a "
                       "chunk); save source.captions as UTF-8") from None
    return captions


def _escaped(name: str) -> str | None:
    """`name` with undecodable bytes (surrogate escapes of a non-UTF-8 file name) shown as `\\xNN`, or
    None when the name is valid UTF-8."""
    try:
        name.encode("utf-8")
        return None
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _is_regular(path: str, info: dict[str, Any]) -> bool:
    """A regular file, or a symlink to one (local; where it points is `sources.guard`'s business)."""
    return info.get("type") == "file" or bool(info.get("islink") and os.path.isfile(path))


def _item(cfg: SourceConfig, rel: str, regular: bool, captions: dict[str, str]) -> SourceItem:
    escaped = _escaped(rel)
    if escaped is not None:
        return SourceItem(escaped, "", storage.join(cfg.path, escaped), UNDECODABLE_NAME)
    return SourceItem(rel, captions.get(rel, ""), storage.join(cfg.path, rel), None if regular else NOT_A_FILE)


def list_items(cfg: SourceConfig) -> list[SourceItem]:
    fs, root = storage.filesystem(cfg.path)
    if not fs.isdir(root):
        raise PadError(f"{cfg.path}: source.path is not a folder")
    found = fs.find(root, detail=True)
    files = sorted(p for p in found
                   if posixpath.splitext(p)[1].lower() in IMAGE_EXTENSIONS
                   and not posixpath.basename(p).startswith("."))
    captions = _read_captions(cfg.captions) if cfg.captions else {}
    return [_item(cfg, posixpath.relpath(p, root), _is_regular(p, found[p]), captions) for p in files]
