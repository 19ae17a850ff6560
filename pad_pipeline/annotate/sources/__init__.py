"""Sources enumerate a corpus as `SourceItem`s (image id, caption, where the bytes are) in a fixed order.

`list_items(cfg)` is called once, when the plan is made; shard tasks later fetch bytes with
`fetch_bytes`, so the corpus is never re-listed and never loaded whole into a worker. `SOURCES` maps
`source.kind` to its lister; `pad_pipeline.annotate.config` checks the kind against it at load.
`SOURCE_FILES` maps a kind whose listing is decided by a few files (tars) to what describes them without
reading them (`source_files`: sizes and stamps), so a resume need not list such a source again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pad_pipeline.annotate.sources.base import SourceItem, fetch_bytes, probe_locations
from pad_pipeline.annotate.sources.guard import outside_root
from pad_pipeline.annotate.sources.registry import SOURCE_FILES, SOURCES
from pad_pipeline.core.errors import PadError

if TYPE_CHECKING:
    from pad_pipeline.annotate.config import SourceConfig
    from pad_pipeline.dataset.source_index import SourceFile


def list_items(cfg: SourceConfig) -> list[SourceItem]:
    """Every item of the corpus `cfg` describes, in its fixed order (the first `cfg.limit` if set)."""
    items = SOURCES.get(SOURCES.check(cfg.kind, "source.kind"))(cfg)
    return items[: cfg.limit] if cfg.limit else items


def source_files(cfg: SourceConfig) -> list[SourceFile] | None:
    """URL, size and stamp of each file the source is listed from (no file is read), or None when its
    kind has no such files or one cannot be described."""
    return SOURCE_FILES.get(cfg.kind)(cfg) if cfg.kind in SOURCE_FILES else None


def probe_source(cfg: SourceConfig, items: list[SourceItem]) -> None:
    """Refuse a source none of whose spread-out probe locations can be read (a wrong image folder),
    before anything is planned or started; one unreadable image among readable ones is left to intake.
    Inputs that must not be read (outside the source's root, refused when listed) are never probed."""
    spread = [it for it in items[::max(1, len(items) // 5)][:5] if it.refused is None]
    outside = outside_root(cfg, (it.location for it in spread))
    probed = [it for it in spread if it.location not in outside]
    if not probed:  # every probe is a named failure to be: nothing to check here
        return
    readable, error = probe_locations(probed, count=len(probed))
    if readable == 0:
        field = "source.image_root" if cfg.kind == "llava_json" else "source.path"
        raise PadError(f"field '{field}': none of {len(probed)} probed images can be read "
                       f"(first: {probed[0].location}: {error}); check the path")


__all__ = ["SOURCES", "SOURCE_FILES", "SourceItem", "fetch_bytes", "list_items", "probe_source", "source_files"]
