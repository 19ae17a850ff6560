"""A synthetic PAD source with exact ground truth: coloured shapes on textured backgrounds.

`make_scene(rng, cfg)` draws one scene: a muted textured background (noise, stripes or checks) and
1-3 non-overlapping shapes, each a distinct (colour, shape) pair such as "red circle", whose masks are
exact by construction. `build_synthetic(cfg)` writes `cfg.num_scenes` scenes as a normal PAD build
(`plan.json` + shards through `pad_pipeline.dataset.writer.write_shard`, the writer of `pad annotate`), so
`pad status`, `pad verify`, the trainer and `pad analyze` read it like any other build. Scene i depends
only on (seed, i); a rerun skips the shards already committed with the same config.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from pydantic import Field, model_validator

from pad_pipeline.annotate.ops.rle import encode_masks
from pad_pipeline.annotate.plan import Plan
from pad_pipeline.core import storage
from pad_pipeline.core.config import ConfigModel, config_hash
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.keys import image_key
from pad_pipeline.dataset.reader import read_record
from pad_pipeline.dataset.writer import Sample, write_shard

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35), "green": (35, 165, 60), "blue": (35, 75, 215),
    "yellow": (235, 205, 30), "white": (245, 245, 245), "black": (15, 15, 15),
}
SHAPES = ("circle", "square", "rectangle", "ellipse", "triangle")
BACKGROUNDS = {"noise": "noisy", "stripes": "striped", "checks": "checkered"}


class SyntheticShapesConfig(ConfigModel):
    out: str = Field(..., description="output folder (local path or fsspec URL) of the PAD build")
    num_scenes: int = Field(1000, ge=1)
    seed: int = Field(0, description="scene i is drawn from rng(seed, i); another seed gives held-out scenes")
    image_size: int = Field(112, ge=32, description="square side of the stored images, in pixels")
    shard_size: int = Field(256, ge=1)
    min_shapes: int = Field(1, ge=1)
    max_shapes: int = Field(3, ge=1)
    min_extent: float = Field(0.25, gt=0.0, le=1.0, description="shape box side / image side, lower bound")
    max_extent: float = Field(0.45, gt=0.0, le=1.0, description="shape box side / image side, upper bound")
    colors: list[str] = Field(default_factory=lambda: list(COLORS))
    shapes: list[str] = Field(default_factory=lambda: list(SHAPES))
    jpeg_quality: int = Field(95, ge=50, le=100)

    @model_validator(mode="after")
    def _check(self) -> "SyntheticShapesConfig":
        bad = [c for c in self.colors if c not in COLORS] + [s for s in self.shapes if s not in SHAPES]
        if bad:
            raise ValueError(f"unknown colours/shapes {bad}; valid: {list(COLORS)} and {list(SHAPES)}")
        if self.min_shapes > self.max_shapes or self.min_extent > self.max_extent:
            raise ValueError("min_shapes/min_extent must not exceed max_shapes/max_extent")
        if self.max_shapes > len(self.colors) * len(self.shapes):
            raise ValueError("max_shapes exceeds the number of distinct (colour, shape) pairs")
        return self


@dataclass(frozen=True)
class Scene:
    image: np.ndarray          # uint8 [h, w, 3]
    tags: list[str]            # one per shape, e.g. "red circle"
    masks: np.ndarray          # bool [n, h, w], exact
    background: str            # a key of BACKGROUNDS
    caption: str


def shape_mask(kind: str, size: int, x0: int, y0: int, w: int, h: int, flip: bool = False) -> np.ndarray:
    """Bool [size, size] mask of `kind` inscribed in the box (x0, y0, w, h); pixel centres are sampled."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    u, v = (xx - x0) / w, (yy - y0) / h          # box coordinates in [0, 1]
    inside = (u >= 0) & (u < 1) & (v >= 0) & (v < 1)
    if kind in ("square", "rectangle"):
        return inside
    if kind in ("circle", "ellipse"):
        return (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25
    if kind == "triangle":
        v = 1 - v if flip else v                  # apex up or down
        return inside & (np.abs(u - 0.5) <= v / 2)
    raise ValueError(f"unknown shape {kind!r}")


def _background(rng: np.random.Generator, size: int) -> tuple[np.ndarray, str]:
    base = rng.uniform(70, 170) + rng.uniform(-25, 25, size=3)  # muted, low-saturation colour
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    kind = str(rng.choice(list(BACKGROUNDS)))
    if kind == "noise":
        texture = rng.normal(0, 18, size=(size, size, 1))
    elif kind == "stripes":
        angle, period = rng.uniform(0, np.pi), rng.uniform(6, 16)
        phase = (xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period
        texture = 25 * np.sin(phase)[..., None]
    else:
        cell = int(rng.integers(6, 15))
        texture = 22 * (((yy // cell + xx // cell) % 2) * 2 - 1)[..., None]
    image = base + texture + rng.normal(0, 4, size=(size, size, 3))
    return image, kind


def _box(rng: np.random.Generator, kind: str, cfg: SyntheticShapesConfig) -> tuple[int, int]:
    side = rng.uniform(cfg.min_extent, cfg.max_extent) * cfg.image_size
    if kind == "rectangle":
        return (int(side), int(side * 0.55)) if rng.random() < 0.5 else (int(side * 0.55), int(side))
    if kind == "ellipse":
        return (int(side), int(side * 0.6)) if rng.random() < 0.5 else (int(side * 0.6), int(side))
    return int(side), int(side)


def _caption(tags: list[str], background: str) -> str:
    things = [f"a {t}" for t in tags]
    listed = things[0] if len(things) == 1 else ", ".join(things[:-1]) + " and " + things[-1]
    return f"{listed} on a {BACKGROUNDS[background]} background."


def make_scene(rng: np.random.Generator, cfg: SyntheticShapesConfig) -> Scene:
    """One scene: background, then shapes placed by rejection sampling so that none overlap."""
    size = cfg.image_size
    image, background = _background(rng, size)
    wanted = int(rng.integers(cfg.min_shapes, cfg.max_shapes + 1))
    pairs = [(c, s) for c in cfg.colors for s in cfg.shapes]
    chosen = [pairs[i] for i in rng.permutation(len(pairs))[:wanted]]
    occupied = np.zeros((size, size), dtype=bool)
    tags, masks = [], []
    for color, kind in chosen:
        for _ in range(50):
            w, h = _box(rng, kind, cfg)
            x0, y0 = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
            # a 3 px margin keeps shapes apart, so each token belongs to at most one shape
            if not occupied[max(0, y0 - 3):y0 + h + 3, max(0, x0 - 3):x0 + w + 3].any():
                break
        else:
            continue
        mask = shape_mask(kind, size, x0, y0, w, h, flip=bool(rng.random() < 0.5))
        occupied[y0:y0 + h, x0:x0 + w] = True
        rgb = np.array(COLORS[color], dtype=np.float64) + rng.uniform(-15, 15, size=3)
        image[mask] = rgb + rng.normal(0, 4, size=(int(mask.sum()), 3))
        tags.append(f"{color} {kind}")
        masks.append(mask)
    pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    stacked = np.stack(masks) if masks else np.zeros((0, size, size), dtype=bool)
    return Scene(pixels, tags, stacked, background, _caption(tags, background) if tags else "a background.")


def scene_sample(image_id: str, scene: Scene, jpeg_quality: int = 95) -> Sample:
    """The PAD sample of a scene: JPEG bytes and a record whose labels hold the exact masks as COCO RLE."""
    h, w = scene.image.shape[:2]
    buf = io.BytesIO()
    Image.fromarray(scene.image).save(buf, format="JPEG", quality=jpeg_quality)
    rles = encode_masks(torch.from_numpy(scene.masks))
    labels = []
    for tag, mask, rle in zip(scene.tags, scene.masks, rles):
        ys, xs = np.nonzero(mask)
        bbox = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
        labels.append({"tag": tag, "bbox": bbox, "score": 1.0, "mask_score": 1.0, "area": int(mask.sum()),
                       "rle_mask": rle})
    record = {"image_id": image_id, "size": [w, h], "caption": scene.caption,
              "tags": list(dict.fromkeys(scene.tags)), "labels": labels}
    return Sample(image_key(image_id), buf.getvalue(), record)


def scene_image_id(cfg: SyntheticShapesConfig, index: int) -> str:
    return f"shapes-s{cfg.seed}/{index:06d}.jpg"


def build_synthetic(cfg: SyntheticShapesConfig, progress: bool = False) -> dict[str, int]:
    """Write (or finish) the build at `cfg.out`; returns counts of written and already committed shards."""
    identity = config_hash(cfg, exclude={"out"})
    num_shards = (cfg.num_scenes + cfg.shard_size - 1) // cfg.shard_size
    fingerprint = hashlib.sha256(json.dumps(["synthetic_shapes", identity]).encode()).hexdigest()
    plan = Plan(cfg.out, fingerprint, identity, cfg.shard_size, cfg.num_scenes, num_shards)
    plan_url = storage.join(cfg.out, "plan.json")
    if storage.exists(plan_url):
        existing = json.loads(storage.read_bytes(plan_url))
        if existing.get("config_hash") != identity:
            raise PadError(f"{plan_url}: holds another build (config hash {existing.get('config_hash')} != "
                           f"{identity}); remove it or choose another output folder")
    else:
        storage.makedirs(cfg.out)
        storage.write_bytes(plan_url, json.dumps(plan.as_dict(), indent=1).encode())
    info = {"source": "synthetic_shapes", "config_hash": identity,
            "synthetic": cfg.model_dump(mode="json", exclude={"out"})}
    written = skipped = 0
    for index in range(num_shards):
        record = read_record(cfg.out, index)
        if record is not None and record.get("config_hash") == identity:
            skipped += 1
            continue
        lo, hi = index * cfg.shard_size, min(cfg.num_scenes, (index + 1) * cfg.shard_size)
        samples = [scene_sample(scene_image_id(cfg, i), make_scene(np.random.default_rng([cfg.seed, i]), cfg),
                                cfg.jpeg_quality) for i in range(lo, hi)]
        write_shard(cfg.out, index, samples, {}, info)
        written += 1
        if progress:
            print(f"synthetic shapes: {cfg.out}: shard {index + 1}/{num_shards} ({hi} scenes)", flush=True)
    return {"shards_written": written, "shards_skipped": skipped, "num_shards": num_shards}
