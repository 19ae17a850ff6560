"""`pad stats OUT`: what a build holds, streamed shard by shard in memory independent of its size.

`compute_stats(out)` reads every committed shard once: the `<key>.json` members of its tar (image
members are skipped, not read) and the status column of its parquet index (every input, ok or a named
failure). Distributions go into fixed-bin `Histogram`s and counters; the tag counters are the only
state that grows, with the vocabulary, not with the number of samples. `BuildStats.to_json()` is what
`--json` prints, what `pad publish` puts in `stats/stats.json` and what the card and gallery show.
"""

from __future__ import annotations

import tarfile
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.layout import BuildLayout
from pad_pipeline.dataset.reader import committed_records, load_plan, read_index
from pad_pipeline.dataset.records import SampleRecord, ShardRecord

TAIL_MAX_IMAGES = 5       # a tag seen in at most this many images is in the long tail
MAX_REGIONS_BIN = 100     # regions per image: one bin per count 0..99, then an overflow count


@dataclass
class Histogram:
    """Counts of values in `bins` equal bins over [lo, hi] (hi itself falls in the last bin), plus the
    counts below and above, and the exact count, sum, min and max of every value added."""

    lo: float
    hi: float
    bins: int
    counts: np.ndarray = field(init=False)
    under: int = 0
    over: int = 0
    n: int = 0
    total: float = 0.0
    min: float = float("inf")
    max: float = float("-inf")

    def __post_init__(self) -> None:
        self.counts = np.zeros(self.bins, dtype=np.int64)

    def add(self, values: Any) -> None:
        v = np.asarray(values, dtype=np.float64).ravel()
        if v.size == 0:
            return
        self.n += int(v.size)
        self.total += float(v.sum())
        self.min, self.max = min(self.min, float(v.min())), max(self.max, float(v.max()))
        idx = np.floor((v - self.lo) / (self.hi - self.lo) * self.bins).astype(np.int64)
        idx[v == self.hi] = self.bins - 1
        self.under += int((idx < 0).sum())
        self.over += int((idx >= self.bins).sum())
        inside = idx[(idx >= 0) & (idx < self.bins)]
        self.counts += np.bincount(inside, minlength=self.bins)

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(self.lo, self.hi, self.bins + 1)

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "mean": _round(self.mean), "min": _round(self.min) if self.n else None,
                "max": _round(self.max) if self.n else None, "lo": self.lo, "hi": self.hi,
                "counts": self.counts.tolist(), "below": self.under, "above": self.over}


def _round(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(x, digits)


@dataclass
class BuildStats:
    """Everything `pad stats` reports about a build (see the module docstring)."""

    out: str
    planned_shards: int = 0
    planned_images: int = 0
    committed_shards: int = 0
    inputs: int = 0
    samples: int = 0
    regions: int = 0
    images_without_regions: int = 0
    regions_per_image: Histogram = field(default_factory=lambda: Histogram(0, MAX_REGIONS_BIN, MAX_REGIONS_BIN))
    mask_area_share: Histogram = field(default_factory=lambda: Histogram(0.0, 1.0, 50))
    box_score: Histogram = field(default_factory=lambda: Histogram(0.0, 1.0, 50))
    mask_score: Histogram = field(default_factory=lambda: Histogram(0.0, 1.0, 50))
    image_tags: Counter = field(default_factory=Counter)    # tag -> images whose `tags` hold it
    region_tags: Counter = field(default_factory=Counter)   # tag -> regions (labels) with it
    failures: Counter = field(default_factory=Counter)      # reason -> images
    shard_samples: list[int] = field(default_factory=list)  # per committed shard (grows with shards only)
    shard_bytes: list[int] = field(default_factory=list)
    seconds: float = 0.0
    _buffer: dict[str, list[float]] = field(
        default_factory=lambda: {"regions": [], "area": [], "box": [], "mask": []}, repr=False)

    def add_record(self, record: SampleRecord) -> None:
        """Count one sample; its values wait in per-shard buffers until `flush()` (one numpy call each)."""
        labels = record.labels
        self.samples += 1
        self.regions += len(labels)
        self.images_without_regions += not labels
        self._buffer["regions"].append(len(labels))
        self.image_tags.update(dict.fromkeys(record.tags, 1))
        if labels:
            pixels = float(record.width * record.height)
            self._buffer["area"].extend(lb.area / pixels for lb in labels)
            self._buffer["box"].extend(lb.score for lb in labels)
            self._buffer["mask"].extend(lb.mask_score for lb in labels)
            self.region_tags.update(lb.tag for lb in labels)

    def flush(self) -> None:
        for name, hist in (("regions", self.regions_per_image), ("area", self.mask_area_share),
                           ("box", self.box_score), ("mask", self.mask_score)):
            hist.add(self._buffer[name])
            self._buffer[name] = []

    def long_tail(self, max_images: int = TAIL_MAX_IMAGES) -> int:
        return sum(1 for c in self.image_tags.values() if c <= max_images)

    def to_json(self, top_k: int = 30) -> dict[str, Any]:
        return {
            "out": self.out,
            "shards": {"planned": self.planned_shards, "committed": self.committed_shards,
                       "samples": _summary(self.shard_samples), "bytes": _summary(self.shard_bytes)},
            "images_planned": self.planned_images, "inputs": self.inputs, "samples": self.samples,
            "images_without_regions": self.images_without_regions, "regions": self.regions,
            "regions_per_image": self.regions_per_image.to_json(),
            "mask_area_share": self.mask_area_share.to_json(),
            "box_score": self.box_score.to_json(), "mask_score": self.mask_score.to_json(),
            "tags": {"unique": len(self.image_tags), "top": top_tags(self.image_tags, top_k),
                     "long_tail_max_images": TAIL_MAX_IMAGES, "long_tail": self.long_tail()},
            "region_tags": {"unique": len(self.region_tags),
                            "top": top_tags(self.region_tags, top_k)},
            "failures": {"total": sum(self.failures.values()), "by_reason": dict(sorted(self.failures.items()))},
        }


def top_tags(counts: Counter, k: int) -> list[list]:
    """The `k` most frequent tags as [tag, count], ties by name (the same order in every process)."""
    return [[t, c] for t, c in sorted(counts.items(), key=lambda tc: (-tc[1], tc[0]))[:k]]


def _summary(values: list[int]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "total": 0, "min": None, "mean": None, "max": None}
    return {"n": len(values), "total": int(sum(values)), "min": int(min(values)),
            "mean": round(sum(values) / len(values), 3), "max": int(max(values))}


def failure_reason(status: str) -> str:
    """`too_large: 20000x20000 pixels` -> `too_large` (the named reason, without its detail)."""
    return status.split(":", 1)[0].strip()


def iter_tar_records(url: str) -> Iterator[SampleRecord]:
    """The sample records of one shard tar, streamed from storage: only `.json` members are read."""
    fs, path = storage.filesystem(url)
    with fs.open(path, "rb") as f, tarfile.open(fileobj=f, mode="r:") as tar:
        for member in tar:
            if member.name.endswith(".json"):
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                yield SampleRecord.decode(data, f"{url}/{member.name}")


def shard_statuses(out: str, index: int, record: ShardRecord) -> list[str]:
    """The status of every input of a shard (`ok` or its failure) from its parquet index; from the
    record's failures when the index is missing."""
    if record.index_bytes is not None or storage.exists(BuildLayout(out).index(index)):
        table = read_index(out, index, record, columns=["status"])  # a damaged index: one line, the fix
        return [str(s) for s in table.column("status").to_pylist()]
    return ["ok"] * record.num_samples + list(record.failures.values())


def compute_stats(out: str, progress: bool = False) -> BuildStats:
    """Stream every committed shard of the build at `out` into one `BuildStats`."""
    start = time.perf_counter()
    plan = load_plan(out)
    records = committed_records(out)
    if not records:
        raise PadError(f"{out}: no committed shard yet; run `pad annotate` first (see `pad status {out}`)")
    stats = BuildStats(out, plan.num_shards, plan.num_items, len(records))
    layout = BuildLayout(out)
    for n, (index, record) in enumerate(sorted(records.items()), 1):
        statuses = shard_statuses(out, index, record)
        stats.inputs += len(statuses)
        stats.failures.update(failure_reason(s) for s in statuses if s != "ok")
        for sample_record in iter_tar_records(layout.tar(index)):
            stats.add_record(sample_record)
        stats.flush()
        stats.shard_samples.append(record.num_samples)
        stats.shard_bytes.append(record.bytes)
        if progress:
            print(f"[pad] stats: shard {n}/{len(records)}, {stats.samples} samples", flush=True)
    stats.seconds = time.perf_counter() - start
    return stats


def format_stats(stats: BuildStats, top_k: int = 15) -> str:
    """A short human-readable summary (what `pad stats OUT` prints without --json)."""
    j = stats.to_json(top_k)
    rpi, area = j["regions_per_image"], j["mask_area_share"]
    lines = [
        f"build {stats.out}: {stats.committed_shards}/{stats.planned_shards} shards committed, "
        f"{stats.samples} samples of {stats.inputs} inputs",
        f"regions: {stats.regions} ({rpi['mean'] or 0:.2f} per image, max {rpi['max']}); "
        f"images with no region: {stats.images_without_regions}",
        f"mask area / image area: mean {area['mean'] or 0:.3f}; box score mean "
        f"{j['box_score']['mean'] or 0:.3f}; mask score mean {j['mask_score']['mean'] or 0:.3f}",
        f"tags: {j['tags']['unique']} unique, {j['tags']['long_tail']} in <= {TAIL_MAX_IMAGES} images; top: "
        + ", ".join(f"{t} ({c})" for t, c in j["tags"]["top"]),
        "failures: " + (", ".join(f"{r} {c}" for r, c in j["failures"]["by_reason"].items()) or "none"),
        f"shard samples min/mean/max: {j['shards']['samples']['min']}/{j['shards']['samples']['mean']}/"
        f"{j['shards']['samples']['max']}; bytes total {j['shards']['bytes']['total']}",
    ]
    return "\n".join(lines)
