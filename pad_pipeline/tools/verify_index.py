"""`pad verify`'s check of a shard's parquet index: it must agree with the tar and the record.

A reader relies on three files per shard: the tar (samples), the parquet index (every input with its
status, read by `pad stats`, `pad show` and `pad publish`) and the record. `index_problems` re-reads the
index and names every way it disagrees: unreadable or changed since its record (sha256), a row count that
is not samples + failures, `ok` rows whose keys or image ids are not the tar's, failure rows whose image
ids or reasons are not the record's.
"""

from __future__ import annotations

import hashlib
import io

import pyarrow as pa
import pyarrow.parquet as pq

from pad_pipeline.core import storage
from pad_pipeline.dataset.layout import BuildLayout, index_name
from pad_pipeline.dataset.records import Sample, ShardRecord

INDEX_COLUMNS = ["key", "image_id", "status"]


def index_problems(out: str, index: int, record: ShardRecord, samples: list[Sample]) -> list[str]:
    """What is wrong with the parquet index of shard `index` given its record and its tar's samples."""
    name = index_name(index)
    try:
        data = storage.read_bytes(BuildLayout(out).index(index))
    except FileNotFoundError:
        return [f"{name}: missing"]
    if record.index_sha256 is not None and hashlib.sha256(data).hexdigest() != record.index_sha256:
        return [f"{name}: sha256 does not match its record"]
    try:
        # no thread pool: the index is small, and pyarrow's pool can abort the exit of a busy process
        rows = pq.read_table(io.BytesIO(data), columns=INDEX_COLUMNS, use_threads=False).to_pylist()
    except (OSError, ValueError, pa.ArrowException) as e:
        return [f"{name}: not a readable parquet index ({str(e).splitlines()[0][:120]})"]
    problems = []
    if len(rows) != record.num_samples + record.num_failures:
        problems.append(f"{name}: {len(rows)} rows, the record has {record.num_samples} samples and "
                        f"{record.num_failures} failures")
    ok = sorted((r["key"], r["image_id"]) for r in rows if r["status"] == "ok")
    if ok != sorted((s.key, s.record.image_id) for s in samples):
        problems.append(f"{name}: its ok rows are not the tar's samples (keys and image ids)")
    failed = {r["image_id"]: r["status"] for r in rows if r["status"] != "ok"}
    if failed != record.failures:
        problems.append(f"{name}: its failure rows are not the record's failures")
    return problems
