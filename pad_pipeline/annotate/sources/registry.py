"""The source registries: `source.kind` -> its lister (and, for some kinds, its file describer).

A module of its own so `pad_pipeline.annotate.config` can check `source.kind` at load without importing
the sources package's functions, which take the config (no import circle).
"""

from __future__ import annotations

from pad_pipeline.core.registry import Registry

SOURCES = Registry("source", {
    "llava_json": "pad_pipeline.annotate.sources.llava_json:list_items",
    "image_dir": "pad_pipeline.annotate.sources.image_dir:list_items",
    "webdataset": "pad_pipeline.annotate.sources.webdataset_tars:list_items",
})
SOURCE_FILES = Registry("source with indexed files", {
    "webdataset": "pad_pipeline.annotate.sources.webdataset_tars:source_files",
})
