"""The file that marks a miniature folder (vision tower, LM warm-up) complete, for the settings that made it.

Written last, after everything else in the folder, so a folder cut off mid-write has none and is made again;
a folder made with other settings or another seed is not taken for this one.
"""

from __future__ import annotations

import json
import os
from typing import Any

from pad_pipeline.core.config import ConfigModel


def is_marked(path: str, cfg: ConfigModel, seed: int) -> bool:
    """Whether the marker `path` exists and records `cfg` and `seed`."""
    if not os.path.isfile(path):
        return False
    with open(path) as f:
        done = json.load(f)
    return bool(done.get("config") == cfg.model_dump(mode="json") and done.get("seed") == seed)


def write_marker(path: str, cfg: ConfigModel, seed: int, **facts: Any) -> None:
    with open(path, "w") as f:
        json.dump({"config": cfg.model_dump(mode="json"), "seed": seed, **facts}, f)
