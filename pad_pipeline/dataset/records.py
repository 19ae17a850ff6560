"""The typed records of a PAD build: what each JSON file holds, with JSON in and out.

`SampleRecord` / `Label` are a sample's `<key>.json` (DESIGN.md, compatible with the paper's Table 9),
`ShardRecord` a shard's `pad-NNNNNN.json` (the commit marker), `Plan` the build's `plan.json` and
`PlannedInput` a line of `plan/pad-NNNNNN.jsonl`. `from_json` validates: a missing or mistyped field is a
`RecordError` naming the file (or sample) and the field. `to_json` writes the keys in a fixed order, so
the same record always encodes to the same bytes (tars are reproducible). Keys a reader does not know
are kept in `extra` and written back after the known ones.
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from pad_pipeline.core.errors import PadError

RECORD_VERSION = 1
PLAN_VERSION = 1


class RecordError(PadError):
    """A build file whose content does not fit its record type."""


_NUMBER = (int, float)


def _get(data: Mapping[str, Any], name: str, types: type | tuple[type, ...], where: str,
         default: Any = ...) -> Any:
    """`data[name]` checked against `types` (bool is never a number); `default` when optional."""
    if name not in data:
        if default is ...:
            raise RecordError(f"{where}: field '{name}' is missing")
        return default
    value = data[name]
    if value is None and default is not ...:
        return default
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise RecordError(f"{where}: field '{name}' must be {_type_names(types)}, got a bool")
    if not isinstance(value, types):
        raise RecordError(f"{where}: field '{name}' must be {_type_names(types)}, got {type(value).__name__}")
    return value


def _type_names(types: type | tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))


def _list_of(data: Mapping[str, Any], name: str, types: type | tuple[type, ...], where: str,
             default: Any = ...) -> Any:
    values = _get(data, name, list, where, default)
    if values is None:
        return None
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, types):
            raise RecordError(f"{where}: field '{name}[{i}]' must be {_type_names(types)}")
    return values


def _mapping(data: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise RecordError(f"{where}: expected a JSON object, got {type(data).__name__}")
    return data


def _extra(data: Mapping[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in known}


@dataclass
class Label:
    """One region of a sample: its tag, box (xyxy pixels), scores, mask area and COCO RLE counts."""

    tag: str
    bbox: list[float]
    score: float
    mask_score: float
    area: int
    rle_mask: str

    FIELDS = ("tag", "bbox", "score", "mask_score", "area", "rle_mask")

    def to_json(self) -> dict[str, Any]:
        return {"tag": self.tag, "bbox": self.bbox, "score": self.score, "mask_score": self.mask_score,
                "area": self.area, "rle_mask": self.rle_mask}

    @classmethod
    def from_json(cls, data: Any, where: str) -> "Label":
        d = _mapping(data, where)
        bbox = _list_of(d, "bbox", _NUMBER, where)
        if len(bbox) != 4:
            raise RecordError(f"{where}: field 'bbox' must hold 4 numbers [x0, y0, x1, y1], got {len(bbox)}")
        return cls(_get(d, "tag", str, where), bbox, _get(d, "score", _NUMBER, where),
                   _get(d, "mask_score", _NUMBER, where), _get(d, "area", int, where),
                   _get(d, "rle_mask", str, where))


@dataclass
class SampleRecord:
    """A sample's `<key>.json`: `size` is [width, height] of the stored image; labels best score first."""

    image_id: str
    size: list[int]
    caption: str
    tags: list[str]
    labels: list[Label]
    tag_scores: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    FIELDS = ("image_id", "size", "caption", "tags", "tag_scores", "labels")

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"image_id": self.image_id, "size": self.size, "caption": self.caption,
                               "tags": self.tags}
        if self.tag_scores is not None:
            out["tag_scores"] = self.tag_scores
        out["labels"] = [label.to_json() for label in self.labels]
        return {**out, **self.extra}

    def encode(self) -> bytes:
        """The exact bytes stored in a shard tar (compact JSON, UTF-8)."""
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, data: Any, where: str) -> "SampleRecord":
        d = _mapping(data, where)
        size = _list_of(d, "size", int, where)
        if len(size) != 2 or min(size) < 1:
            raise RecordError(f"{where}: field 'size' must be [width, height] (positive), got {size}")
        labels = [Label.from_json(x, f"{where} labels[{i}]") for i, x in enumerate(_get(d, "labels", list, where))]
        return cls(_get(d, "image_id", str, where), size, _get(d, "caption", str, where),
                   _list_of(d, "tags", str, where), labels, _list_of(d, "tag_scores", _NUMBER, where, None),
                   _extra(d, cls.FIELDS))

    @classmethod
    def decode(cls, data: bytes, where: str) -> "SampleRecord":
        try:
            return cls.from_json(json.loads(data), where)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RecordError(f"{where}: not valid JSON ({e})") from None


@dataclass
class ShardRecord:
    """A shard's `pad-NNNNNN.json`, written after its tar and index: counts, checksum, failures, provenance.

    `failures` maps image_id -> reason (`decode_error`, `too_large: 20000x20000`, ...) for every input
    that did not become a sample. `extra` holds provenance a writer adds (model ids and revisions,
    timings, the synthetic-build config).
    """

    shard: int
    tar: str
    sha256: str
    bytes: int
    num_samples: int
    num_regions: int
    failures: dict[str, str] = field(default_factory=dict)
    num_inputs: int | None = None
    config_hash: str | None = None
    source_fingerprint: str | None = None
    empty_masks_dropped: int = 0
    failure_counts: dict[str, int] = field(default_factory=dict)
    version: int = RECORD_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    plan_id: str | None = None
    inputs_digest: str | None = None
    index_sha256: str | None = None
    index_bytes: int | None = None

    FIELDS = ("version", "shard", "tar", "sha256", "bytes", "num_samples", "num_failures", "num_regions",
              "failures", "num_inputs", "config_hash", "source_fingerprint", "empty_masks_dropped",
              "failure_counts", "plan_id", "inputs_digest", "index_sha256", "index_bytes")
    IDENTITY = ("plan_id", "inputs_digest", "index_sha256", "index_bytes")  # written only when set

    @property
    def num_failures(self) -> int:
        return len(self.failures)

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "shard": self.shard, "tar": self.tar, "sha256": self.sha256,
                "bytes": self.bytes, "num_samples": self.num_samples, "num_failures": self.num_failures,
                "num_regions": self.num_regions, "failures": dict(sorted(self.failures.items())),
                "num_inputs": self.num_inputs, "config_hash": self.config_hash,
                "source_fingerprint": self.source_fingerprint, "empty_masks_dropped": self.empty_masks_dropped,
                "failure_counts": dict(sorted(self.failure_counts.items())),
                **{k: getattr(self, k) for k in self.IDENTITY if getattr(self, k) is not None}, **self.extra}

    def encode(self) -> builtins.bytes:  # the field `bytes` shadows the type in this class
        return json.dumps(self.to_json(), indent=1).encode()

    @classmethod
    def from_json(cls, data: Any, where: str) -> "ShardRecord":
        d = _mapping(data, where)
        failures = _get(d, "failures", dict, where, {})
        counts = _get(d, "failure_counts", dict, where, {})
        record = cls(_get(d, "shard", int, where), _get(d, "tar", str, where), _get(d, "sha256", str, where),
                     _get(d, "bytes", int, where), _get(d, "num_samples", int, where),
                     _get(d, "num_regions", int, where), {str(k): str(v) for k, v in failures.items()},
                     _get(d, "num_inputs", int, where, None), _get(d, "config_hash", str, where, None),
                     _get(d, "source_fingerprint", str, where, None), _get(d, "empty_masks_dropped", int, where, 0),
                     {str(k): int(v) for k, v in counts.items()}, _get(d, "version", int, where, RECORD_VERSION),
                     _extra(d, cls.FIELDS), _get(d, "plan_id", str, where, None),
                     _get(d, "inputs_digest", str, where, None), _get(d, "index_sha256", str, where, None),
                     _get(d, "index_bytes", int, where, None))
        stated = _get(d, "num_failures", int, where, record.num_failures)
        if stated != record.num_failures:
            raise RecordError(f"{where}: field 'num_failures' is {stated} but 'failures' lists {record.num_failures}")
        return record

    @classmethod
    def decode(cls, data: builtins.bytes, where: str) -> "ShardRecord":
        try:
            return cls.from_json(json.loads(data), where)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RecordError(f"{where}: not valid JSON ({e})") from None


@dataclass(frozen=True)
class Sample:
    """One annotated image as stored in a shard: its key, the stored JPEG bytes and its record."""

    key: str
    image: bytes
    record: SampleRecord


@dataclass(frozen=True)
class PlannedInput:
    """One line of `plan/pad-NNNNNN.jsonl`: an input image, its caption, where its bytes are, its key."""

    image_id: str
    caption: str
    location: str
    key: str
    refused: str | None = None  # a named failure decided when listing (`undecodable_name`): never read

    def to_json(self) -> dict[str, str]:
        out = {"image_id": self.image_id, "caption": self.caption, "location": self.location, "key": self.key}
        return out if self.refused is None else {**out, "refused": self.refused}

    @classmethod
    def from_json(cls, data: Any, where: str) -> "PlannedInput":
        d = _mapping(data, where)
        image_id, caption, location, key = (_get(d, name, str, where) for name in ("image_id", "caption", "location",
                                                                                    "key"))
        return cls(image_id, caption, location, key, _get(d, "refused", str, where, None))


@dataclass
class Plan:
    """`plan.json`: fixed before any work, so every shard is a unit that can be rerun on its own.

    `out` is where the build lives (not stored in the file: a build can be moved or read remotely).
    `plan_id` (random, made when the plan is written) and `shard_digests` (the digest of each shard's
    planned input list) are the identity every shard record must repeat to count (`dataset.reader`);
    plans written before them have neither.
    """

    out: str
    source_fingerprint: str
    config_hash: str
    shard_size: int
    num_items: int
    num_shards: int
    version: int = PLAN_VERSION
    plan_id: str | None = None
    shard_digests: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        identity = {"plan_id": self.plan_id, "shard_digests": self.shard_digests}
        return {"version": self.version, "source_fingerprint": self.source_fingerprint,
                "config_hash": self.config_hash, "shard_size": self.shard_size, "num_items": self.num_items,
                "num_shards": self.num_shards, **{k: v for k, v in identity.items() if v is not None}}

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), indent=1).encode()

    @classmethod
    def from_json(cls, data: Any, out: str, where: str) -> "Plan":
        d = _mapping(data, where)
        plan = cls(out, _get(d, "source_fingerprint", str, where), _get(d, "config_hash", str, where),
                   _get(d, "shard_size", int, where), _get(d, "num_items", int, where),
                   _get(d, "num_shards", int, where), _get(d, "version", int, where, PLAN_VERSION),
                   _get(d, "plan_id", str, where, None), _list_of(d, "shard_digests", str, where, None))
        if plan.shard_digests is not None and len(plan.shard_digests) != plan.num_shards:
            raise RecordError(f"{where}: field 'shard_digests' lists {len(plan.shard_digests)} shards, "
                              f"not {plan.num_shards}")
        return plan
