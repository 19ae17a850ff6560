"""`pad status OUT` and `pad verify OUT`: what a build holds, and whether every committed shard is whole."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pad_pipeline.annotate.ops.rle import decode_mask
from pad_pipeline.annotate.plan import load_plan
from pad_pipeline.core import storage
from pad_pipeline.dataset.reader import iter_tar_samples, read_record, record_indexes


def shard_states(out: str) -> dict[int, str]:
    """shard index -> committed | failed | partial | pending, for every planned shard."""
    plan = load_plan(out)
    names = set(storage.list_names(out, "pad-*"))
    states = {}
    for i in range(plan.num_shards):
        base = f"pad-{i:06d}"
        record = read_record(out, i) if f"{base}.json" in names else None
        if record is not None and f"{base}.tar" in names and storage.size(storage.join(out, f"{base}.tar")) == record["bytes"]:
            states[i] = "committed"
        elif f"{base}.error.json" in names:
            states[i] = "failed"
        elif f"{base}.tar" in names:
            states[i] = "partial"
        else:
            states[i] = "pending"
    return states


def build_status(out: str) -> dict[str, Any]:
    plan = load_plan(out)
    states = shard_states(out)
    totals: Counter = Counter()
    reasons: Counter = Counter()
    for i, state in states.items():
        if state != "committed":
            continue
        r = read_record(out, i) or {}
        totals.update({"samples": r.get("num_samples", 0), "regions": r.get("num_regions", 0),
                       "image_failures": r.get("num_failures", 0), "empty_masks_dropped": r.get("empty_masks_dropped", 0)})
        reasons.update(r.get("failure_counts", {}))
    return {"out": out, "images_planned": plan.num_items, "shards": plan.num_shards,
            "states": dict(Counter(states.values())), **dict(totals), "failure_reasons": dict(reasons),
            "failed_shards": [i for i, s in states.items() if s == "failed"],
            "pending_shards": [i for i, s in states.items() if s in ("pending", "partial")]}


@dataclass
class VerifyReport:
    shards_checked: int = 0
    samples: int = 0
    masks: int = 0
    problems: list[str] = field(default_factory=list)


def verify_shard(out: str, index: int, record: dict[str, Any], report: VerifyReport) -> None:
    name = f"pad-{index:06d}"
    data = storage.read_bytes(storage.join(out, record["tar"]))
    if hashlib.sha256(data).hexdigest() != record["sha256"]:
        report.problems.append(f"{name}.tar: sha256 does not match its record")
        return
    n = 0
    for sample in iter_tar_samples(data):
        n += 1
        rec = sample.record
        w, h = rec["size"]
        for j, label in enumerate(rec.get("labels", [])):
            try:
                m = decode_mask(label["rle_mask"], h, w)
                if m.shape != (h, w) or int(m.sum()) != label["area"]:
                    report.problems.append(f"{name}/{sample.key}: label {j} mask does not match size/area")
            except Exception as e:
                report.problems.append(f"{name}/{sample.key}: label {j} rle_mask does not decode ({e})")
            report.masks += 1
    if n != record["num_samples"]:
        report.problems.append(f"{name}.tar: {n} samples, record says {record['num_samples']}")
    report.samples += n
    report.shards_checked += 1


def verify_build(out: str) -> VerifyReport:
    """Re-read every shard that has a record: sha256, sample count, and every mask decodes."""
    report = VerifyReport()
    for index in record_indexes(out):
        fname = f"pad-{index:06d}.json"
        record = read_record(out, index)
        if record is None:
            report.problems.append(f"{fname}: unreadable record")
            continue
        if not storage.exists(storage.join(out, record["tar"])):
            report.problems.append(f"{fname}: its tar {record['tar']} is missing")
            continue
        verify_shard(out, index, record, report)
    return report


def format_status(status: dict[str, Any]) -> str:
    return json.dumps(status, indent=1)
