"""A small synthetic PAD build (random images, rectangle/ellipse masks, captions, tags) for tests and benches.

`write_synthetic_build(out, num_samples, shard_size, ...)` writes real committed shards through
`pad_pipeline.dataset.writer.write_shard`, so the trainer reads them exactly like an annotated build. Each image
is a smooth random colour field with one bright rectangle and one ellipse; their masks are the labels. Deterministic per seed.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from pad_pipeline.dataset.keys import image_key
from pad_pipeline.dataset.writer import Sample, write_shard

_TAGS = ["sky", "water", "tree", "dog", "car", "canyon wall", "flower", "traffic light", "red circle", "house"]
_WORDS = "a the dog cat sky water tree near under over red blue green small large photo of on in with".split()


def encode_rle(mask: np.ndarray) -> str:
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode()


def synthetic_sample(index: int, rng: np.random.Generator, min_side: int, max_side: int) -> Sample:
    w, h = (int(v) for v in rng.integers(min_side, max_side + 1, size=2))
    # Smooth random colour fields (like photos, unlike white noise) so JPEG sizes and decode costs are realistic.
    coarse = rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    pixels = np.array(Image.fromarray(coarse).resize((w, h), Image.BILINEAR))
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
    labels = []
    for tag, m in zip(tags, (rect, ellipse)):
        ys, xs = np.nonzero(m)
        labels.append({"tag": tag, "bbox": [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)],
                       "score": 0.5, "mask_score": 0.9, "area": int(m.sum()), "rle_mask": encode_rle(m)})
    if index % 5 == 4:  # a sliver no token can satisfy: exercises skipping
        sliver = np.zeros((h, w), dtype=bool)
        sliver[0, 0] = True
        labels.append({"tag": "speck", "bbox": [0.0, 0.0, 1.0, 1.0], "score": 0.3, "mask_score": 0.5, "area": 1,
                       "rle_mask": encode_rle(sliver)})
    caption = " ".join(str(t) for t in rng.choice(_WORDS, size=int(rng.integers(4, 10))))
    image_id = f"synthetic/{index:08d}.jpg"
    record = {"image_id": image_id, "size": [w, h], "caption": caption, "tags": tags, "labels": labels}
    return Sample(image_key(image_id), buf.getvalue(), record)


def write_synthetic_build(out: str, num_samples: int, shard_size: int, seed: int = 0, min_side: int = 64,
                          max_side: int = 160) -> list[dict]:
    """Write ceil(num_samples / shard_size) committed shards under `out`; returns their records."""
    rng = np.random.default_rng(seed)
    samples = [synthetic_sample(i, rng, min_side, max_side) for i in range(num_samples)]
    records = []
    for index, first in enumerate(range(0, num_samples, shard_size)):
        records.append(write_shard(out, index, samples[first:first + shard_size], {}, {"synthetic": True}))
    return records
