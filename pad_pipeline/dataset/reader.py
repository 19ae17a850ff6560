"""Reading a PAD build, and the one rule for "this shard is committed".

A shard is committed when its record (`pad-NNNNNN.json`) exists and parses as a `ShardRecord`, its tar and
parquet index exist with the sizes the record states, and the record belongs to the build's plan: the
same shard index, plan id, config hash and digest of the shard's planned input list as `plan.json`
(`commit_problem`). A record of another plan (a lost `plan.json`, a second writer) is never read as
data: its shard is `damaged`, `pad verify` names it and a rerun rebuilds it. `pad verify` also checks the
sha256 of tar and index, that they agree with the record, and decodes every mask. `scan_shards` applies
the rule to every shard of a build with one listing of the folder; status, verify, the annotation
driver, the trainer and the tools all go through it. A folder without `plan.json` has no committed shard
for any reader (a one-line error says so). `iter_committed_samples` is the Python reader for users; the
trainer streams `committed_shard_urls` through webdataset; `read_index` reads a shard's parquet index.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError
from pad_pipeline.core.ranges import format_ranges
from pad_pipeline.dataset.layout import (
    SHARD_GLOB,
    BuildLayout,
    index_name,
    parse_shard_file,
    record_name,
    tar_name,
)
from pad_pipeline.dataset.records import Plan, PlannedInput, RecordError, Sample, SampleRecord, ShardRecord
from pad_pipeline.dataset.source_index import SourceIndex

COMMITTED, FAILED, PARTIAL, PENDING, DAMAGED = "committed", "failed", "partial", "pending", "damaged"


@dataclass(frozen=True)
class ShardState:
    """What the files of one shard say: its state and, when it has a readable record, the record."""

    index: int
    state: str  # committed | damaged (unreadable, files missing or wrong, another plan's) | failed | partial | pending
    record: ShardRecord | None = None
    problem: str = ""


def plan_problem(record: ShardRecord, plan: Plan, index: int) -> str | None:
    """Why `record` does not belong to shard `index` of `plan`, or None when it does."""
    if record.shard != index:
        return f"its record is shard {record.shard}'s"
    if record.plan_id != plan.plan_id:
        return f"it belongs to another plan (plan id {record.plan_id}, the build's is {plan.plan_id})"
    if record.config_hash != plan.config_hash:
        return f"it was made with another config (hash {record.config_hash}, the plan's is {plan.config_hash})"
    if plan.shard_digests is not None and record.inputs_digest != plan.shard_digests[index]:
        return "its inputs are not the ones the plan lists for it"
    return None


def commit_problem(record: ShardRecord, plan: Plan, index: int, sizes: dict[str, int]) -> str | None:
    """THE commit rule: None when `record` commits shard `index` of `plan`, given the sizes of the build's
    shard files (name -> bytes); else what is wrong."""
    wrong = plan_problem(record, plan, index)
    if wrong is not None:
        return wrong
    tar_size = sizes.get(tar_name(index))
    if tar_size is None:
        return "its tar is missing"
    if tar_size != record.bytes:
        return f"its tar has {tar_size} bytes, not {record.bytes}"
    index_size = sizes.get(index_name(index))
    if record.index_bytes is not None and index_size != record.index_bytes:
        return ("its index is missing" if index_size is None
                else f"its index has {index_size} bytes, not {record.index_bytes}")
    return None


def read_record(out: str, index: int) -> ShardRecord:
    """The record of shard `index`; FileNotFoundError when absent, RecordError when unreadable."""
    data = storage.read_bytes(BuildLayout(out).record(index))
    return ShardRecord.decode(data, record_name(index))


def _shard_files(out: str) -> tuple[dict[int, set[str]], dict[str, int]]:
    """(shard index -> kinds of files it has, file name -> size), from one listing of `out`."""
    sizes = storage.list_sizes(out, SHARD_GLOB)
    files: dict[int, set[str]] = {}
    for name in sizes:
        parsed = parse_shard_file(name)
        if parsed:
            files.setdefault(parsed[0], set()).add(parsed[1])
    return files, sizes


def _state(out: str, plan: Plan, index: int, kinds: set[str], sizes: dict[str, int]) -> ShardState:
    if "json" in kinds:
        try:
            record = read_record(out, index)
        except (FileNotFoundError, RecordError) as e:
            return ShardState(index, DAMAGED, None, f"{record_name(index)}: {e}")
        problem = commit_problem(record, plan, index, sizes)
        if problem is None:
            return ShardState(index, COMMITTED, record)
        return ShardState(index, DAMAGED, record, f"{record_name(index)}: {problem}")
    if "error.json" in kinds:
        return ShardState(index, FAILED)
    return ShardState(index, PARTIAL if "tar" in kinds else PENDING)


def scan_shards(out: str, plan: Plan | None = None) -> dict[int, ShardState]:
    """The state of every planned shard of the build at `out` (its `plan.json`, unless `plan` is given)."""
    plan = plan if plan is not None else load_plan(out)
    files, sizes = _shard_files(out)
    return {i: _state(out, plan, i, files.get(i, set()), sizes) for i in range(plan.num_shards)}


def committed_records(out: str, plan: Plan | None = None) -> dict[int, ShardRecord]:
    """shard index -> record, for every committed shard of `out`."""
    return {i: s.record for i, s in scan_shards(out, plan).items() if s.state == COMMITTED and s.record}


def committed_shard_urls(out: str) -> list[str]:
    """Tar URLs of the committed shards of `out`, in shard order."""
    return [storage.join(out, r.tar) for _, r in sorted(committed_records(out).items())]


def repair_command(out: str, shards: list[int]) -> str:
    """The one command that rebuilds exactly `shards` of the build at `out` (from its resolved manifest)."""
    layout = BuildLayout(out)
    manifest = layout.config if storage.exists(layout.config) else "MANIFEST"
    return f"pad annotate {manifest} --out {out} --redo {format_ranges(shards)}"


def read_index(out: str, index: int, record: ShardRecord, columns: list[str] | None = None) -> pa.Table:
    """The parquet index of committed shard `index`, checked against its record's sha256; a one-line
    PadError naming the file and the command that rebuilds the shard when it is missing or damaged."""
    url = BuildLayout(out).index(index)
    try:
        data = storage.read_bytes(url)
        if record.index_sha256 is not None and hashlib.sha256(data).hexdigest() != record.index_sha256:
            raise ValueError("sha256 does not match its record")
        # no thread pool: the index is small, and pyarrow's pool can abort the exit of a busy process
        return pq.read_table(io.BytesIO(data), columns=columns, use_threads=False)
    except (OSError, ValueError, pa.ArrowException) as e:
        raise PadError(f"{url}: damaged parquet index ({str(e).splitlines()[0][:120]}); rebuild the shard with: "
                       f"{repair_command(out, [index])}") from None


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
