"""What a build may read of its source: nothing outside the source's root.

Every input path must resolve under the source's root: `source.image_root` for `llava_json` (default: the
JSON file's folder), `source.path` for `image_dir`. Local paths are resolved with `os.path.realpath`
(symlinks included, `..` and absolute paths too); URLs of object stores, which have no symlinks, by
normalising `..`. An input outside the root becomes the named failure `outside_root` in its shard record
and is never opened, in the shard task and in the planning probe alike; `source.allow_outside_root: true`
lets a manifest read such paths on purpose. WebDataset members are names inside the tars the manifest
itself names, never paths, so they have no root to leave. `refusals` also returns the failures a source
decided when it listed an input (`PlannedInput.refused`, e.g. `undecodable_name`).
"""

from __future__ import annotations

import os
import posixpath
from typing import TYPE_CHECKING, Iterable

from fsspec.implementations.local import LocalFileSystem

from pad_pipeline.annotate.sources.base import parse_tar_location
from pad_pipeline.core import storage

if TYPE_CHECKING:
    from pad_pipeline.annotate.config import SourceConfig
    from pad_pipeline.dataset.records import PlannedInput

OUTSIDE_ROOT = "outside_root"


def source_root(cfg: SourceConfig) -> str | None:
    """The folder every input of `cfg` must stay under, or None when its inputs are not paths."""
    if cfg.kind == "llava_json":
        return cfg.image_root or (cfg.path.rsplit("/", 1)[0] if "/" in cfg.path else ".")
    if cfg.kind == "image_dir":
        return cfg.path
    return None


def is_under(location: str, root: str) -> bool:
    """Whether `location` resolves inside folder `root` (see the module docstring)."""
    if parse_tar_location(location) is not None:
        return True
    fs, path = storage.filesystem(location)
    root_fs, root_path = storage.filesystem(root)
    if isinstance(fs, LocalFileSystem) != isinstance(root_fs, LocalFileSystem) or fs.protocol != root_fs.protocol:
        return False
    if isinstance(fs, LocalFileSystem):
        path, root_path, sep = os.path.realpath(path), os.path.realpath(root_path), os.sep
    else:
        path, root_path, sep = posixpath.normpath(path), posixpath.normpath(root_path), "/"
    return path == root_path or path.startswith(root_path.rstrip(sep) + sep)


def outside_root(cfg: SourceConfig, locations: Iterable[str]) -> set[str]:
    """The locations among `locations` that `cfg` may not read (none when it allows outside paths)."""
    root = source_root(cfg)
    if root is None or cfg.allow_outside_root:
        return set()
    return {loc for loc in locations if not is_under(loc, root)}


def refusals(cfg: SourceConfig, inputs: list[PlannedInput]) -> dict[str, str]:
    """location -> named failure, for every input of a shard that must not be read."""
    refused = {inp.location: inp.refused for inp in inputs if inp.refused is not None}
    outside = outside_root(cfg, (inp.location for inp in inputs if inp.refused is None))
    return {**refused, **dict.fromkeys(outside, OUTSIDE_ROOT)}
