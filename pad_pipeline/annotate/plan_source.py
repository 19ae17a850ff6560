"""What a plan keeps of its source: shard boundaries along compressed tars, and the stored file stamps.

`shard_starts` fixes where each shard begins. Items fill shards of `output.shard_size` in listing order,
except the members of one compressed tar (`.tar.gz`: no byte ranges), which stay together so that one
shard task decompresses that tar and no other does: a shard closes early rather than split such a tar,
and a compressed tar of more than `shard_size` images is a shard of its own (shard_size is then a
target, not a bound). Uncompressed tars, files and folders are cut every `shard_size` items as before.

`record_source_files` writes `OUT/source_index.json` (sizes and stamps of the source's files, taken
before they were listed); `source_unchanged` compares them with `fs.info` now, so a resume of an
unchanged source reads no tar at all.
"""

from __future__ import annotations

import itertools
from typing import TextIO

from pad_pipeline.annotate.sources.base import SourceItem, whole_tar_url
from pad_pipeline.core import storage
from pad_pipeline.dataset.layout import BuildLayout
from pad_pipeline.dataset.reader import load_source_index
from pad_pipeline.dataset.source_index import SourceFile, SourceIndex
from pad_pipeline.dataset.writer import write_source_index


def shard_starts(items: list[SourceItem], shard_size: int) -> list[int]:
    """The index of the first item of each shard (see the module docstring)."""
    starts: list[int] = []
    filled = position = 0
    for url, run in itertools.groupby(items, key=lambda it: whole_tar_url(it.location)):
        count = sum(1 for _ in run)
        for size in [1] * count if url is None else [count]:
            if not starts or (filled and filled + size > shard_size):
                starts.append(position)
                filled = 0
            filled += size
            position += size
    return starts


def _difference(stored: list[SourceFile], now: list[SourceFile]) -> str:
    """What differs between the stored and the current description of the source files, in a few words."""
    if [f.url for f in stored] != [f.url for f in now]:
        new = sorted({f.url for f in now} - {f.url for f in stored})
        return (f"the source names {len(now)} files, the plan {len(stored)}"
                + (f" ({new[0]} is new)" if new else ""))
    for then, current in zip(stored, now, strict=True):
        if then.size != current.size:
            return f"{current.url}: {then.size} bytes when planned, {current.size} now"
        if current.stamp is None:
            return f"{current.url}: the store gives no etag or modification time to compare"
        if then.stamp != current.stamp:
            return f"{current.url}: {then.stamp} when planned, {current.stamp} now"
    return "the stored index differs"  # not reached: source_unchanged asks only when something differs


def source_unchanged(out: str, fingerprint: str, files: list[SourceFile] | None, stream: TextIO) -> bool:
    """True when the source index stored for the plan of `fingerprint` matches `files` (URLs, sizes and
    stamps, all known); False otherwise, saying why on `stream` when a stored index differs."""
    index = load_source_index(out)
    if files is None or index is None or index.source_fingerprint != fingerprint:
        return False
    if index.files == files and all(f.stamp is not None for f in files):
        return True
    print(f"[pad] {out}: {_difference(index.files, files)}; listing the source again", file=stream, flush=True)
    return False


def record_source_files(out: str, fingerprint: str, files: list[SourceFile] | None) -> None:
    """Store `files` as the source of the plan of `fingerprint`; remove a stale index when there are none."""
    if files is None:
        storage.remove(BuildLayout(out).source_index)
    else:
        write_source_index(out, SourceIndex(fingerprint, files))
