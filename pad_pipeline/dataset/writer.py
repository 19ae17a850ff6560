"""Writing one shard of a PAD build: reproducible tar, parquet index, and the record that commits it.

`write_shard` is the only writer of shard files. Order matters and is the commit protocol:
`pad-NNNNNN.tar` -> `pad-NNNNNN.parquet` -> `pad-NNNNNN.json` (the record, holding the tar's sha256).
A shard exists for readers only once its record exists and matches its tar (see `pad_pipeline.dataset.reader`).
Tars are byte-reproducible: members sorted by key, fixed mtime/owner/mode, no PAX timestamps.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from pad_pipeline.core import storage

# 2020-01-01T00:00:00Z: fixed so the same input gives byte-identical tars.
FIXED_MTIME = 1577836800
RECORD_VERSION = 1


@dataclass(frozen=True)
class Sample:
    """One annotated image: its key, the stored JPEG bytes and the sample record (DESIGN.md)."""

    key: str
    image: bytes
    record: dict[str, Any]


def shard_name(index: int) -> str:
    return f"pad-{index:06d}"


def encode_record(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _tar_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = FIXED_MTIME
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info, io.BytesIO(data)


def build_tar(samples: Iterable[Sample]) -> bytes:
    """The tar bytes of `samples`: `<key>.jpg` then `<key>.json`, keys sorted; reproducible."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for s in sorted(samples, key=lambda s: s.key):
            for name, data in ((f"{s.key}.jpg", s.image), (f"{s.key}.json", encode_record(s.record))):
                info, fileobj = _tar_member(name, data)
                tar.addfile(info, fileobj)
    return buf.getvalue()


def build_index(samples: list[Sample], failures: dict[str, str]) -> bytes:
    """Parquet index of a shard: one row per input image, with its status (ok or the failure reason)."""
    rows_key, rows_id, rows_status, rows_labels, rows_tags = [], [], [], [], []
    for s in sorted(samples, key=lambda s: s.key):
        rows_key.append(s.key)
        rows_id.append(s.record.get("image_id", ""))
        rows_status.append("ok")
        rows_labels.append(len(s.record.get("labels", [])))
        rows_tags.append(list(s.record.get("tags", [])))
    for image_id in sorted(failures):
        rows_key.append(None)
        rows_id.append(image_id)
        rows_status.append(failures[image_id])
        rows_labels.append(0)
        rows_tags.append([])
    table = pa.table({
        "key": pa.array(rows_key, pa.string()),
        "image_id": pa.array(rows_id, pa.string()),
        "status": pa.array(rows_status, pa.string()),
        "num_labels": pa.array(rows_labels, pa.int32()),
        "tags": pa.array(rows_tags, pa.list_(pa.string())),
    })
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def write_shard(out: str, index: int, samples: list[Sample], failures: dict[str, str],
                info: dict[str, Any], before_commit: Callable[[], None] | None = None) -> dict[str, Any]:
    """Write shard `index` of the build at `out` and commit it by writing its record last.

    `failures` maps image_id -> reason for inputs that did not become samples; `info` is merged into
    the record (config hash, plan fingerprint, model provenance, timings...). `before_commit` runs
    between the data files and the record (fault-injection tests use it). Returns the record.
    """
    keys = [s.key for s in samples]
    if len(set(keys)) != len(keys):
        raise ValueError(f"shard {index}: duplicate sample keys")
    name = shard_name(index)
    tar_bytes = build_tar(samples)
    storage.write_bytes(storage.join(out, f"{name}.tar"), tar_bytes)
    storage.write_bytes(storage.join(out, f"{name}.parquet"), build_index(samples, failures))
    if before_commit is not None:
        before_commit()
    record = {
        "version": RECORD_VERSION,
        "shard": index,
        "tar": f"{name}.tar",
        "sha256": hashlib.sha256(tar_bytes).hexdigest(),
        "bytes": len(tar_bytes),
        "num_samples": len(samples),
        "num_failures": len(failures),
        "num_regions": sum(len(s.record.get("labels", [])) for s in samples),
        "failures": dict(sorted(failures.items())),
        **info,
    }
    storage.write_bytes(storage.join(out, f"{name}.json"), json.dumps(record, indent=1).encode())
    return record
