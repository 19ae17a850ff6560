"""Synthetic PAD builds: generated samples written as a normal build, planned and committed like one.

`write_synthetic_build(out, source, identity, num_samples, shard_size, make_sample)` plans the build
through `dataset.writer.write_plan` (inputs named `synthetic://SOURCE/i`) and writes every shard through
`dataset.writer.write_shard`, so `pad status`, `pad verify`, the trainer and `pad analyze` read it like
an annotated build. Sample i must depend only on i (and the generator's config): a rerun skips the
shards already committed with the same identity, and another identity on the same folder is refused.

Two generators use it: `dataset.shapes` (coloured shapes with exact masks, for the paper's
measurements) and `random_field_build` here (smooth random images with a rectangle and an ellipse,
for trainer tests and benchmarks).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.keys import image_key
from pad_pipeline.dataset.layout import BuildLayout
from pad_pipeline.dataset.reader import COMMITTED, load_plan, scan_shards
from pad_pipeline.dataset.records import Label, Plan, PlannedInput, Sample, SampleRecord
from pad_pipeline.dataset.rle import encode_mask_array
from pad_pipeline.dataset.writer import plan_identity, write_plan, write_shard


@dataclass(frozen=True)
class SyntheticBuild:
    num_shards: int
    shards_written: int
    shards_skipped: int


def synthetic_plan(out: str, source: str, identity: str, image_ids: list[str], shard_size: int
                   ) -> tuple[Plan, list[PlannedInput]]:
    fingerprint = hashlib.sha256(json.dumps([source, identity, len(image_ids)]).encode()).hexdigest()
    plan = Plan(out, fingerprint, identity, shard_size, len(image_ids), -(-len(image_ids) // shard_size))
    inputs = [PlannedInput(image_id, "", f"synthetic://{source}/{i}", image_key(image_id))
              for i, image_id in enumerate(image_ids)]
    return plan, inputs


def write_synthetic_build(out: str, source: str, identity: str, image_ids: list[str], shard_size: int,
                          make_sample: Callable[[int], Sample], info: dict | None = None,
                          progress: bool = False) -> SyntheticBuild:
    """Write (or finish) the synthetic build at `out`: sample i has id `image_ids[i]` and is
    `make_sample(i)`; `identity` names what decides the build's bytes."""
    num_samples = len(image_ids)
    plan, inputs = synthetic_plan(out, source, identity, image_ids, shard_size)
    layout = BuildLayout(out)
    if storage.exists(layout.plan):
        existing = json.loads(storage.read_bytes(layout.plan))
        if existing.get("config_hash") != identity:
            raise PadError(f"{layout.plan}: holds another build (config hash {existing.get('config_hash')} != "
                           f"{identity}); remove it or choose another output folder")
        plan = load_plan(out)
    else:
        plan = write_plan(plan, inputs)
    states = scan_shards(out, plan)
    written = skipped = 0
    for index in range(plan.num_shards):
        if states[index].state == COMMITTED:  # committed = of this plan, hence of this identity
            skipped += 1
            continue
        lo, hi = index * shard_size, min(num_samples, (index + 1) * shard_size)
        samples = [make_sample(i) for i in range(lo, hi)]
        if [s.key for s in samples] != [inp.key for inp in inputs[lo:hi]]:
            raise ValueError(f"synthetic {source}: sample keys do not match the planned image ids")
        write_shard(out, index, samples, {},
                    {**plan_identity(plan, index, inputs[lo:hi]), "source": source, **(info or {})})
        written += 1
        if progress:
            print(f"synthetic {source}: {out}: shard {index + 1}/{plan.num_shards} ({hi} samples)", flush=True)
    return SyntheticBuild(plan.num_shards, written, skipped)


_TAGS = ["sky", "water", "tree", "dog", "car", "canyon wall", "flower", "traffic light", "red circle", "house"]
_WORDS = "a the dog cat sky water tree near under over red blue green small large photo of on in with".split()


def mask_label(tag: str, mask: np.ndarray, score: float, mask_score: float) -> Label:
    """The label of an exact bool mask: its tight box (x1/y1 exclusive), area and RLE."""
    ys, xs = np.nonzero(mask)
    bbox = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
    return Label(tag, bbox, score, mask_score, int(mask.sum()), encode_mask_array(mask))


def random_field_sample(index: int, seed: int, min_side: int, max_side: int) -> Sample:
    """A smooth random colour field (photo-like JPEG sizes and decode costs) with a red rectangle and a
    blue ellipse as its labels; every fifth sample also has a one-pixel label no token can satisfy."""
    rng = np.random.default_rng([seed, index])
    w, h = (int(v) for v in rng.integers(min_side, max_side + 1, size=2))
    coarse = rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    pixels = np.array(Image.fromarray(coarse).resize((w, h), Image.Resampling.BILINEAR))
    yy, xx = np.mgrid[:h, :w]
    x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
    rect = (xx >= x0) & (xx < x0 + w // 2) & (yy >= y0) & (yy < y0 + h // 2)
    cx, cy, rx, ry = w * rng.uniform(0.3, 0.7), h * rng.uniform(0.3, 0.7), w * 0.25, h * 0.2
    ellipse = ((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1.0
    pixels[rect] = (230, 40, 40)
    pixels[ellipse] = (40, 40, 230)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=90)
    tags = [str(t) for t in rng.choice(_TAGS, size=2, replace=False)]
    labels = [mask_label(tags[0], rect, 0.5, 0.9), mask_label(tags[1], ellipse, 0.5, 0.9)]
    if index % 5 == 4:
        sliver = np.zeros((h, w), dtype=bool)
        sliver[0, 0] = True
        labels.append(mask_label("speck", sliver, 0.3, 0.5))
    caption = " ".join(str(t) for t in rng.choice(_WORDS, size=int(rng.integers(4, 10))))
    image_id = random_field_id(index)
    return Sample(image_key(image_id), buf.getvalue(), SampleRecord(image_id, [w, h], caption, tags, labels))


def random_field_id(index: int) -> str:
    return f"random_fields/{index:08d}.jpg"


def random_field_build(out: str, num_samples: int, shard_size: int, seed: int = 0, min_side: int = 64,
                       max_side: int = 160) -> SyntheticBuild:
    """A random-field build of `num_samples` samples (trainer tests and benchmarks)."""
    identity = hashlib.sha256(json.dumps(["random_fields", seed, min_side, max_side]).encode()).hexdigest()[:16]
    image_ids = [random_field_id(i) for i in range(num_samples)]
    return write_synthetic_build(out, "random_fields", identity, image_ids, shard_size,
                                 lambda i: random_field_sample(i, seed, min_side, max_side))
