"""Sample keys: deterministic, unique and dot-free names derived from image ids.

`image_key("00000/00000030.jpg") == "00000_00000030_jpg"`. Characters other than letters, digits, `_`
and `-` become `_`; when two ids of one plan map to the same key, later ones get `_dup1`, `_dup2`...
in plan order, so keys stay unique and a rerun of the same plan gives the same keys.
"""

from __future__ import annotations

import re
from typing import Iterable

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def image_key(image_id: str) -> str:
    return _UNSAFE.sub("_", image_id).strip("_") or "_"


def unique_keys(image_ids: Iterable[str]) -> list[str]:
    """Keys for `image_ids` in order, disambiguating collisions deterministically."""
    seen: set[str] = set()
    keys = []
    for image_id in image_ids:
        base = image_key(image_id)
        key, n = base, 0
        while key in seen:
            n += 1
            key = f"{base}_dup{n}"
        seen.add(key)
        keys.append(key)
    return keys
