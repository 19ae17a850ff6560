"""The shard plan: fixed before any work, so every shard is a unit that can be rerun on its own.

`OUT/plan.json` holds the source fingerprint, shard size and count, and the hash of the config that
decides the output (source, intake, models; not the runner). `OUT/plan/pad-NNNNNN.jsonl` lists each
shard's inputs (image id, caption, location, key), so shard tasks never re-list the corpus. Running the
same command again resumes; a different source, shard size or annotation config is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pad_pipeline.annotate.config import AnnotateConfig
from pad_pipeline.annotate.sources import SourceItem, list_items
from pad_pipeline.core import storage
from pad_pipeline.core.config import config_hash
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.keys import unique_keys

PLAN_VERSION = 1


@dataclass(frozen=True)
class PlannedInput:
    image_id: str
    caption: str
    location: str
    key: str


@dataclass
class Plan:
    out: str
    source_fingerprint: str
    config_hash: str
    shard_size: int
    num_items: int
    num_shards: int

    def as_dict(self) -> dict[str, Any]:
        return {"version": PLAN_VERSION, "source_fingerprint": self.source_fingerprint,
                "config_hash": self.config_hash, "shard_size": self.shard_size,
                "num_items": self.num_items, "num_shards": self.num_shards}

    def inputs_url(self, index: int) -> str:
        return storage.join(self.out, "plan", f"pad-{index:06d}.jsonl")

    def shard_inputs(self, index: int) -> list[PlannedInput]:
        lines = storage.read_bytes(self.inputs_url(index)).decode("utf-8").splitlines()
        return [PlannedInput(**json.loads(line)) for line in lines if line]


def annotation_config_hash(cfg: AnnotateConfig) -> str:
    """Hash of what decides a shard's bytes. The runner, the output path and the detector's text cache
    (a reused encoding equals a fresh one, as after a change of batch size) are left out, so they can
    change when a build is resumed."""
    exclude = {"runner": True, "output": {"path"}, "models": {"detector": {"text_cache_size"}}}
    return config_hash(cfg, exclude=exclude)  # type: ignore[arg-type]


def source_fingerprint(kind: str, items: list[SourceItem]) -> str:
    h = hashlib.sha256(kind.encode())
    for it in items:
        h.update(json.dumps([it.image_id, it.caption, it.location]).encode())
        h.update(b"\n")
    return h.hexdigest()


def _check_resume(existing: dict[str, Any], plan: Plan, plan_url: str) -> None:
    if existing.get("source_fingerprint") != plan.source_fingerprint:
        raise PadError(f"{plan_url}: this build was planned from a different source "
                       f"({existing.get('num_items')} items then, {plan.num_items} now); "
                       "use a new --out or restore the original source")
    if existing.get("shard_size") != plan.shard_size:
        raise PadError(f"{plan_url}: planned with output.shard_size={existing.get('shard_size')}, "
                       f"not {plan.shard_size}; keep the original shard size or use a new --out")
    if existing.get("config_hash") != plan.config_hash:
        raise PadError(f"{plan_url}: planned with another annotation config (hash "
                       f"{existing.get('config_hash')} != {plan.config_hash}); see OUT/config.yaml "
                       "for the original, or use a new --out")


def make_or_resume_plan(cfg: AnnotateConfig, out: str) -> Plan:
    """Plan the build at `out`, or check that the existing plan matches and reuse it."""
    items = list_items(cfg.source)
    if not items:
        raise PadError(f"{cfg.source.path}: the source has no images")
    size = cfg.output.shard_size
    plan = Plan(out, source_fingerprint(cfg.source.kind, items), annotation_config_hash(cfg), size,
                len(items), (len(items) + size - 1) // size)
    plan_url = storage.join(out, "plan.json")
    if storage.exists(plan_url):
        _check_resume(json.loads(storage.read_bytes(plan_url)), plan, plan_url)
        if all(storage.exists(plan.inputs_url(i)) for i in range(plan.num_shards)):
            return plan
    keys = unique_keys(it.image_id for it in items)
    for index in range(plan.num_shards):
        lo, hi = index * size, min(len(items), (index + 1) * size)
        lines = [json.dumps({**items[i].as_dict(), "key": keys[i]}, ensure_ascii=False) for i in range(lo, hi)]
        storage.write_bytes(plan.inputs_url(index), ("\n".join(lines) + "\n").encode("utf-8"))
    storage.write_bytes(plan_url, json.dumps(plan.as_dict(), indent=1).encode())
    return plan


def load_plan(out: str) -> Plan:
    plan_url = storage.join(out, "plan.json")
    if not storage.exists(plan_url):
        raise PadError(f"{plan_url}: no plan here; is this a PAD build folder?")
    d = json.loads(storage.read_bytes(plan_url))
    return Plan(out, d["source_fingerprint"], d["config_hash"], d["shard_size"], d["num_items"], d["num_shards"])


def parse_shard_selection(text: str, num_shards: int) -> list[int]:
    """`0,3-5` -> [0, 3, 4, 5]; out-of-range numbers are an error naming them."""
    chosen: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                chosen.update(range(lo, hi + 1))
            else:
                chosen.add(int(part))
        except ValueError:
            raise PadError(f"--shards {text!r}: expected numbers and ranges like 0,3-5") from None
    bad = sorted(i for i in chosen if not 0 <= i < num_shards)
    if bad:
        raise PadError(f"--shards: {bad} out of range; the plan has shards 0-{num_shards - 1}")
    return sorted(chosen)
