"""Reading a PAD build, and the one rule for "this shard is committed".

A shard is committed when its record (`pad-NNNNNN.json`) exists, parses as a `ShardRecord`, and its tar
exists with the size the record states (`pad verify` also checks the sha256 and decodes every mask).
`scan_shards` applies that rule to every shard of a build with one listing of the folder; status,
verify, the annotation driver, the trainer and the tools all go through it. `iter_committed_samples`
is the Python reader for users; the trainer streams `committed_shard_urls` through webdataset.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from typing import Iterator

from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.layout import SHARD_GLOB, BuildLayout, parse_shard_file, record_name
from pad_pipeline.dataset.records import Plan, PlannedInput, RecordError, Sample, SampleRecord, ShardRecord
from pad_pipeline.dataset.source_index import SourceIndex

COMMITTED, FAILED, PARTIAL, PENDING, DAMAGED = "committed", "failed", "partial", "pending", "damaged"


@dataclass(frozen=True)
class ShardState:
    """What the files of one shard say: its state and, when it has a readable record, the record."""

    index: int
    state: str  # committed | damaged (record unreadable or tar missing/wrong size) | failed | partial | pending
    record: ShardRecord | None = None
    problem: str = ""


def is_committed(record: ShardRecord | None, tar_size: int | None) -> bool:
    """THE commit rule: a readable record, and a tar of exactly the size it states."""
    return record is not None and tar_size is not None and tar_size == record.bytes


def read_record(out: str, index: int) -> ShardRecord:
    """The record of shard `index`; FileNotFoundError when absent, RecordError when unreadable."""
    data = storage.read_bytes(BuildLayout(out).record(index))
    return ShardRecord.decode(data, record_name(index))


def _shard_files(out: str) -> dict[int, set[str]]:
    files: dict[int, set[str]] = {}
    for name in storage.list_names(out, SHARD_GLOB):
        parsed = parse_shard_file(name)
        if parsed:
            files.setdefault(parsed[0], set()).add(parsed[1])
    return files


def _state(out: str, index: int, kinds: set[str]) -> ShardState:
    layout = BuildLayout(out)
    if "json" in kinds:
        try:
            record = read_record(out, index)
        except (FileNotFoundError, RecordError) as e:
            return ShardState(index, DAMAGED, None, f"{record_name(index)}: {e}")
        tar_size = storage.size(layout.tar(index)) if "tar" in kinds else None
        if is_committed(record, tar_size):
            return ShardState(index, COMMITTED, record)
        problem = "its tar is missing" if tar_size is None else f"its tar has {tar_size} bytes, not {record.bytes}"
        return ShardState(index, DAMAGED, record, f"{record_name(index)}: {problem}")
    if "error.json" in kinds:
        return ShardState(index, FAILED)
    return ShardState(index, PARTIAL if "tar" in kinds else PENDING)


def scan_shards(out: str, num_shards: int | None = None) -> dict[int, ShardState]:
    """The state of every shard of `out`: shards 0..num_shards-1 when given (unlisted ones pending),
    else every shard that has a file."""
    files = _shard_files(out)
    indexes = range(num_shards) if num_shards is not None else sorted(files)
    return {i: _state(out, i, files.get(i, set())) for i in indexes}


def committed_records(out: str) -> dict[int, ShardRecord]:
    """shard index -> record, for every committed shard of `out`."""
    return {i: s.record for i, s in scan_shards(out).items() if s.state == COMMITTED and s.record}


def committed_shard_urls(out: str) -> list[str]:
    """Tar URLs of the committed shards of `out`, in shard order."""
    return [storage.join(out, r.tar) for _, r in sorted(committed_records(out).items())]


def iter_tar_samples(tar_bytes: bytes, where: str = "tar") -> Iterator[Sample]:
    """Samples of one shard tar (members grouped by key, in tar order); records are validated."""
    key, image, record = None, None, None
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:") as tar:
        for member in tar:
            member_key, _, ext = member.name.partition(".")
            if key is not None and member_key != key:
                yield _sample(key, image, record, where)
                image, record = None, None
            key = member_key
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
            if ext == "json":
                record = SampleRecord.decode(data, f"{where}/{member.name}")
            else:
                image = data
    if key is not None:
        yield _sample(key, image, record, where)


def _sample(key: str, image: bytes | None, record: SampleRecord | None, where: str) -> Sample:
    if image is None or record is None:
        raise RecordError(f"{where}/{key}: sample has no {'image' if image is None else 'record'}")
    return Sample(key, image, record)


def iter_committed_samples(out: str) -> Iterator[Sample]:
    """Every sample of every committed shard of `out`, shard by shard, in key order."""
    for _, record in sorted(committed_records(out).items()):
        yield from iter_tar_samples(storage.read_bytes(storage.join(out, record.tar)), record.tar)


def load_plan(out: str) -> Plan:
    """The `plan.json` of the build at `out`; a one-line error when `out` is not a planned build."""
    url = BuildLayout(out).plan
    try:
        data = json.loads(storage.read_bytes(url))
    except FileNotFoundError:
        raise PadError(f"{url}: no plan here; is {out} a PAD build folder?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RecordError(f"{url}: not valid JSON ({e})") from None
    return Plan.from_json(data, out, url)


def load_source_index(out: str) -> SourceIndex | None:
    """The `source_index.json` of the build at `out`; None when it has none (a plan made before it
    existed) or it is unreadable (then the source is listed again, as without one)."""
    try:
        return SourceIndex.decode(storage.read_bytes(BuildLayout(out).source_index), "source_index.json")
    except (FileNotFoundError, RecordError):
        return None


def read_shard_inputs(plan: Plan, index: int) -> list[PlannedInput]:
    """The planned inputs of shard `index` (`plan/pad-NNNNNN.jsonl`)."""
    url = BuildLayout(plan.out).plan_inputs(index)
    lines = storage.read_bytes(url).decode("utf-8").splitlines()
    return [PlannedInput.from_json(json.loads(line), f"{url}:{n}") for n, line in enumerate(lines, 1) if line]
