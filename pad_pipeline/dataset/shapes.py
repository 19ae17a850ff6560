"""A synthetic PAD source with exact ground truth: coloured shapes on textured backgrounds.

`make_scene(rng, cfg)` draws one scene: a muted textured background (noise, stripes or checks) and
1-3 non-overlapping shapes, each a distinct (colour, shape) pair such as "red circle", whose masks are
exact by construction. `build_synthetic(cfg)` writes `cfg.num_scenes` scenes as a normal PAD build
through `dataset.synthetic.write_synthetic_build` (planned and committed like `pad annotate`'s), so
`pad status`, `pad verify`, the trainer and `pad analyze` read it like any other build. Scene i depends
only on (seed, i); a rerun skips the shards already committed with the same config.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from pydantic import Field, model_validator

from pad_pipeline.core.config import ConfigModel, config_hash
from pad_pipeline.dataset.keys import image_key
from pad_pipeline.dataset.records import Sample, SampleRecord
from pad_pipeline.dataset.synthetic import SyntheticBuild, mask_label, write_synthetic_build

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
    labels = [mask_label(tag, mask, 1.0, 1.0) for tag, mask in zip(scene.tags, scene.masks, strict=True)]
    record = SampleRecord(image_id, [w, h], scene.caption, list(dict.fromkeys(scene.tags)), labels)
    return Sample(image_key(image_id), buf.getvalue(), record)


def scene_image_id(cfg: SyntheticShapesConfig, index: int) -> str:
    return f"shapes-s{cfg.seed}/{index:06d}.jpg"


def build_synthetic(cfg: SyntheticShapesConfig, progress: bool = False) -> SyntheticBuild:
    """Write (or finish) the shapes build at `cfg.out`; scene i depends only on (seed, i)."""
    identity = config_hash(cfg, exclude={"out"})
    image_ids = [scene_image_id(cfg, i) for i in range(cfg.num_scenes)]

    def make_sample(i: int) -> Sample:
        scene = make_scene(np.random.default_rng([cfg.seed, i]), cfg)
        return scene_sample(image_ids[i], scene, cfg.jpeg_quality)

    return write_synthetic_build(cfg.out, "synthetic_shapes", identity, image_ids, cfg.shard_size, make_sample,
                                 {"synthetic": cfg.model_dump(mode="json", exclude={"out"})}, progress)
