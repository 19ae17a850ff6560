"""Writing one shard of a PAD build: reproducible tar, parquet index, and the record that commits it.

`write_shard` is the only writer of shard files, `write_plan` the only writer of a plan. Order matters and is
the commit protocol: tar -> parquet index -> shard record (holding the sha256 and size of both, and the
plan identity its caller passes: `plan_id`, `inputs_digest`, `config_hash`), names from `dataset.layout`.
A shard exists for readers only once its record exists, matches its tar and index and belongs to the
build's plan (the rule is `dataset.reader`'s). `write_plan` gives each plan a fresh `plan_id` and the
`inputs_digest` of each shard's input list.
Tars are byte-reproducible: members sorted by key, fixed mtime/owner/mode, no PAX timestamps.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import uuid
from dataclasses import replace
from typing import Any, Callable, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from pad_pipeline.core import storage
from pad_pipeline.dataset.layout import BuildLayout, tar_name
from pad_pipeline.dataset.records import Plan, PlannedInput, Sample, ShardRecord
from pad_pipeline.dataset.source_index import SourceIndex

# 2020-01-01T00:00:00Z: fixed so the same input gives byte-identical tars.
FIXED_MTIME = 1577836800


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
            for name, data in ((f"{s.key}.jpg", s.image), (f"{s.key}.json", s.record.encode())):
                info, fileobj = _tar_member(name, data)
                tar.addfile(info, fileobj)
    return buf.getvalue()


def build_index(samples: list[Sample], failures: dict[str, str]) -> bytes:
    """Parquet index of a shard: one row per input image, with its status (ok or the failure reason)."""
    ordered = sorted(samples, key=lambda s: s.key)
    failed = sorted(failures)
    table = pa.table({
        "key": pa.array([s.key for s in ordered] + [None] * len(failed), pa.string()),
        "image_id": pa.array([s.record.image_id for s in ordered] + failed, pa.string()),
        "status": pa.array(["ok"] * len(ordered) + [failures[i] for i in failed], pa.string()),
        "num_labels": pa.array([len(s.record.labels) for s in ordered] + [0] * len(failed), pa.int32()),
        "tags": pa.array([list(s.record.tags) for s in ordered] + [[]] * len(failed), pa.list_(pa.string())),
    })
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def write_shard(out: str, index: int, samples: list[Sample], failures: dict[str, str],
                info: dict[str, Any], before_commit: Callable[[], None] | None = None) -> ShardRecord:
    """Write shard `index` of the build at `out` and commit it by writing its record last.

    `failures` maps image_id -> reason for inputs that did not become samples; `info` fills the
    record's provenance fields (`ShardRecord` fields by name, anything else into `extra`).
    `before_commit` runs between the data files and the record (fault-injection tests use it).
    """
    keys = [s.key for s in samples]
    if len(set(keys)) != len(keys):
        raise ValueError(f"shard {index}: duplicate sample keys")
    layout = BuildLayout(out)
    tar_bytes = build_tar(samples)
    storage.write_bytes(layout.tar(index), tar_bytes)
    index_bytes = build_index(samples, failures)
    storage.write_bytes(layout.index(index), index_bytes)
    if before_commit is not None:
        before_commit()
    known = {k: info[k] for k in ("num_inputs", "config_hash", "source_fingerprint", "empty_masks_dropped",
                                  "failure_counts", "plan_id", "inputs_digest") if k in info}
    record = ShardRecord(shard=index, tar=tar_name(index), sha256=hashlib.sha256(tar_bytes).hexdigest(),
                         bytes=len(tar_bytes), num_samples=len(samples),
                         num_regions=sum(len(s.record.labels) for s in samples), failures=dict(failures),
                         **known, extra={k: v for k, v in info.items() if k not in known},
                         index_sha256=hashlib.sha256(index_bytes).hexdigest(), index_bytes=len(index_bytes))
    storage.write_bytes(layout.record(index), record.encode())
    return record


def inputs_digest(inputs: list[PlannedInput]) -> str:
    """The digest of a shard's planned input list, kept in `plan.json` and repeated in its shard record."""
    h = hashlib.sha256()
    for inp in inputs:
        h.update(json.dumps(inp.to_json(), ensure_ascii=True, sort_keys=True).encode() + b"\n")
    return h.hexdigest()


def plan_identity(plan: Plan, index: int, inputs: list[PlannedInput]) -> dict[str, Any]:
    """What the record of shard `index` must hold to belong to `plan` (`write_shard`'s `info`)."""
    return {"plan_id": plan.plan_id, "inputs_digest": inputs_digest(inputs), "config_hash": plan.config_hash,
            "source_fingerprint": plan.source_fingerprint, "num_inputs": len(inputs)}


def write_plan(plan: Plan, inputs: list[PlannedInput], starts: list[int] | None = None) -> Plan:
    """Write each shard's input list, then `plan.json` (last: a plan exists once all its lists do); returns
    the plan as written, with a new `plan_id` and each shard's input digest.

    `starts` is the index of each shard's first input (default: every `plan.shard_size` inputs)."""
    if len(inputs) != plan.num_items:
        raise ValueError(f"plan of {plan.num_items} items given {len(inputs)} inputs")
    starts = list(range(0, plan.num_items, plan.shard_size)) if starts is None else starts
    if len(starts) != plan.num_shards:
        raise ValueError(f"plan of {plan.num_shards} shards given {len(starts)} shard starts")
    layout = BuildLayout(plan.out)
    digests = []
    for index, (lo, hi) in enumerate(zip(starts, [*starts[1:], len(inputs)], strict=True)):
        chunk = inputs[lo:hi]
        lines = [json.dumps(inp.to_json(), ensure_ascii=False) for inp in chunk]
        storage.write_bytes(layout.plan_inputs(index), ("\n".join(lines) + "\n").encode("utf-8"))
        digests.append(inputs_digest(chunk))
    plan = replace(plan, plan_id=uuid.uuid4().hex, shard_digests=digests)
    storage.write_bytes(layout.plan, plan.encode())
    return plan


def write_source_index(out: str, index: SourceIndex) -> None:
    """Write `source_index.json`; after `plan.json`, as it vouches for the plan whose fingerprint it holds."""
    storage.write_bytes(BuildLayout(out).source_index, index.encode())
