"""Sources enumerate a corpus as `SourceItem`s (image id, caption, where the bytes are) in a fixed order.

`list_items(cfg)` is called once, when the plan is made; shard tasks later fetch bytes with
`fetch_bytes`, so the corpus is never re-listed and never loaded whole into a worker.
"""

from __future__ import annotations

from pad_pipeline.annotate.config import SourceConfig
from pad_pipeline.annotate.sources.base import SourceItem, fetch_bytes
from pad_pipeline.core.errors import ConfigError


def list_items(cfg: SourceConfig) -> list[SourceItem]:
    from pad_pipeline.annotate.sources import image_dir, llava_json, webdataset_tars

    readers = {
        "llava_json": llava_json.list_items,
        "image_dir": image_dir.list_items,
        "webdataset": webdataset_tars.list_items,
    }
    if cfg.kind not in readers:
        raise ConfigError(f"field 'source.kind': {cfg.kind!r} is not supported; valid: {', '.join(readers)}")
    items = readers[cfg.kind](cfg)
    return items[: cfg.limit] if cfg.limit else items


__all__ = ["SourceItem", "fetch_bytes", "list_items"]
