"""Cheap checks every reader runs before it yields an item: files exist, JSON parses, images are there.

They raise one-line `PadError`s naming the manifest field, the file and what to do, so `pad eval` can open
every benchmark before any model loads. Nothing here decodes an image.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, TypeVar

from pad_pipeline.core.errors import PadError

T = TypeVar("T")


def require_file(path: str | Path, field: str, what: str) -> Path:
    """`path` as a Path when it is a file; else a PadError naming `field` and `what` it should be."""
    p = Path(path)
    if not p.is_file():
        raise PadError(f"{field}: {p} is not a file: give the path of {what}")
    return p


def require_dir(path: str | Path, field: str, what: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise PadError(f"{field}: {p} is not a folder: give the folder of {what}")
    return p


def load_json(path: Path, field: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PadError(f"{field}: {path} is not valid JSON ({e}): give the file unmodified") from None


def first(items: Iterable[T], limit: int | None) -> list[T]:
    """The first `limit` items (all when None)."""
    out = list(items)
    return out if limit is None else out[:limit]


def require_images(paths: Iterable[str], field: str, source: Path) -> None:
    """Every image path exists; else one PadError counting the missing ones and naming the first."""
    wanted = list(paths)
    missing = [p for p in wanted if not Path(p).is_file()]
    if missing:
        raise PadError(f"{field}: {len(missing)} of the {len(wanted)} images {source} names are missing, e.g. "
                       f"{missing[0]}: give the folder that holds them")


def id_order(value: object) -> tuple[int, int, str]:
    """Sort key putting integer ids in numeric order before any other ids (in string order)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (0, value, "")
    return (1, 0, str(value))
