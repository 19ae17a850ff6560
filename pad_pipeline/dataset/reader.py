"""Reading a PAD build: only committed shards, never a partial one.

A shard is committed when `pad-NNNNNN.json` (its record) exists and its tar has the size the record
states (`verify` also checks the sha256 and decodes every mask). `iter_committed_samples` is the Python
reader for users; the trainer streams `committed_shard_urls` through webdataset.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from typing import Any, Iterator

from pad_pipeline.core import storage
from pad_pipeline.dataset.writer import Sample

RECORD_NAME = re.compile(r"^pad-(\d{6})\.json$")


def read_record(out: str, index: int) -> dict[str, Any] | None:
    """The record of shard `index`, or None when it has none (not committed) or it is unreadable."""
    url = storage.join(out, f"pad-{index:06d}.json")
    try:
        return json.loads(storage.read_bytes(url))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def record_indexes(out: str) -> list[int]:
    """Indexes of the shards that have a record file (committed or damaged)."""
    return [int(m.group(1)) for name in storage.list_names(out, "pad-*.json")
            if (m := RECORD_NAME.match(name))]


def committed_records(out: str) -> dict[int, dict[str, Any]]:
    """shard index -> record, for every shard whose record exists and whose tar matches its size."""
    records: dict[int, dict[str, Any]] = {}
    for index in record_indexes(out):
        record = read_record(out, index)
        if record is None:
            continue
        tar_url = storage.join(out, record["tar"])
        if storage.exists(tar_url) and storage.size(tar_url) == record["bytes"]:
            records[index] = record
    return records


def committed_shard_urls(out: str) -> list[str]:
    """Tar URLs of the committed shards of `out`, in shard order."""
    return [storage.join(out, r["tar"]) for _, r in sorted(committed_records(out).items())]


def iter_tar_samples(tar_bytes: bytes) -> Iterator[Sample]:
    """Samples of one shard tar (members grouped by key, in tar order)."""
    current: dict[str, Any] = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
        for member in tar:
            key, _, ext = member.name.partition(".")
            if current and current["key"] != key:
                yield Sample(current["key"], current["jpg"], current["json"])
                current = {}
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
            current["key"] = key
            current[ext] = json.loads(data) if ext == "json" else data
    if current:
        yield Sample(current["key"], current["jpg"], current["json"])


def iter_committed_samples(out: str) -> Iterator[Sample]:
    """Every sample of every committed shard of `out`, shard by shard, in key order."""
    for url in committed_shard_urls(out):
        yield from iter_tar_samples(storage.read_bytes(url))
