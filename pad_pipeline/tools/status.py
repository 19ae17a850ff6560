"""`pad status OUT` and `pad verify OUT`: what a build holds, and whether every committed shard is whole.

`pad status` reads only the plan and the shard records; `pad verify` also reads every committed shard's
tar and parquet index and checks that the three agree (`verify_shard`): no torch, no models, so both
start in a fraction of a second on any machine. Shard lists are printed as ranges (`0-2,5`), the form
`pad annotate --shards/--redo` reads.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError
from pad_pipeline.core.ranges import format_ranges
from pad_pipeline.dataset.layout import tar_name
from pad_pipeline.dataset.reader import (
    COMMITTED,
    DAMAGED,
    FAILED,
    PARTIAL,
    PENDING,
    iter_tar_samples,
    load_plan,
    repair_command,
    scan_shards,
)
from pad_pipeline.dataset.records import RecordError, Sample, ShardRecord
from pad_pipeline.dataset.rle import decode_mask
from pad_pipeline.tools.verify_index import index_problems

__all__ = ["VerifyReport", "build_status", "format_status", "repair_command", "shard_states", "verify_build"]


def shard_states(out: str) -> dict[int, str]:
    """shard index -> committed | damaged | failed | partial | pending, for every planned shard."""
    return {i: s.state for i, s in scan_shards(out).items()}


def build_status(out: str) -> dict[str, Any]:
    plan = load_plan(out)
    states = scan_shards(out, plan)
    totals: Counter = Counter()
    reasons: Counter = Counter()
    for state in states.values():
        r = state.record
        if state.state != COMMITTED or r is None:
            continue
        totals.update({"samples": r.num_samples, "regions": r.num_regions, "image_failures": r.num_failures,
                       "empty_masks_dropped": r.empty_masks_dropped})
        reasons.update(r.failure_counts)
    return {"out": out, "images_planned": plan.num_items, "shards": plan.num_shards,
            "states": dict(Counter(s.state for s in states.values())), **dict(totals),
            "failure_reasons": dict(reasons),
            "failed_shards": format_ranges(i for i, s in states.items() if s.state == FAILED),
            "damaged_shards": format_ranges(i for i, s in states.items() if s.state == DAMAGED),
            "pending_shards": format_ranges(i for i, s in states.items() if s.state in (PENDING, PARTIAL))}


@dataclass
class VerifyReport:
    planned: int = 0
    shards_checked: int = 0
    samples: int = 0
    masks: int = 0
    problems: list[str] = field(default_factory=list)
    damaged: list[int] = field(default_factory=list)   # shards to rebuild (`pad annotate --redo`)
    missing: list[int] = field(default_factory=list)   # planned shards not committed (yet)

    def summary(self) -> dict[str, Any]:
        return {"planned_shards": self.planned, "shards_checked": self.shards_checked, "samples": self.samples,
                "masks": self.masks, "problems": len(self.problems), "damaged_shards": format_ranges(self.damaged),
                "missing_shards": format_ranges(self.missing)}


def verify_shard(out: str, index: int, record: ShardRecord, report: VerifyReport) -> None:
    """Re-read shard `index`: tar sha256, every sample and mask, and its parquet index against both."""
    name = tar_name(index)
    data = storage.read_bytes(storage.join(out, record.tar))
    if hashlib.sha256(data).hexdigest() != record.sha256:
        report.problems.append(f"{name}: sha256 does not match its record")
        return
    try:
        samples = list(iter_tar_samples(data, name))
    except (RecordError, OSError) as e:
        report.problems.append(f"{name}: {e}")
        return
    for sample in samples:
        _verify_masks(name, sample, report)
    if len(samples) != record.num_samples:
        report.problems.append(f"{name}: {len(samples)} samples, record says {record.num_samples}")
    report.problems.extend(index_problems(out, index, record, samples))
    report.samples += len(samples)
    report.shards_checked += 1


def _verify_masks(name: str, sample: Sample, report: VerifyReport) -> None:
    h, w = sample.record.height, sample.record.width
    for j, label in enumerate(sample.record.labels):
        try:
            m = decode_mask(label.rle_mask, h, w)
            if m.shape != (h, w) or int(m.sum()) != label.area:
                report.problems.append(f"{name}/{sample.key}: label {j} mask does not match size/area")
        except Exception as e:
            report.problems.append(f"{name}/{sample.key}: label {j} rle_mask does not decode ({e})")
        report.masks += 1


def verify_build(out: str) -> VerifyReport:
    """Re-read every committed shard of the build at `out`: sha256, sample count, every mask decodes, the
    parquet index agrees with tar and record.

    Shards whose record is unreadable or of another plan, or whose tar or index is missing or changed, are
    damaged; planned shards with no record are missing. A path that is not a planned build is a one-line PadError.
    """
    if not storage.exists(out):
        raise PadError(f"{out}: no such folder; give the --out of a `pad annotate` run")
    plan = load_plan(out)
    report = VerifyReport(planned=plan.num_shards)
    for index, state in scan_shards(out, plan).items():
        if state.state == DAMAGED:
            report.problems.append(state.problem)
            report.damaged.append(index)
        elif state.state == COMMITTED and state.record is not None:
            before = len(report.problems)
            verify_shard(out, index, state.record, report)
            if len(report.problems) > before:
                report.damaged.append(index)
        else:
            report.missing.append(index)
    return report


def format_status(status: dict[str, Any]) -> str:
    return json.dumps(status, indent=1)
