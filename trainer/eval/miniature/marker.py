"""Where a miniature folder (vision tower, LM warm-up) lives, and the file that marks it complete.

`keyed_folder(parent, name, *settings)` names the folder by a hash of everything its content depends on, so
other settings make another folder: the runs that load it then name another checkpoint, and are never reused
from a folder that was overwritten under them. The marker is written last, after everything else in the
folder, so a folder cut off mid-write has none and is made again.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from pydantic import BaseModel

from pad_pipeline.core.config import ConfigModel


def keyed_folder(parent: str, name: str, *settings: BaseModel) -> str:
    """`PARENT/NAME-HASH`, HASH: 8 hex digits of the settings' JSON, in order."""
    blob = json.dumps([s.model_dump(mode="json") for s in settings], sort_keys=True, separators=(",", ":"))
    return os.path.join(parent, f"{name}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}")


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
