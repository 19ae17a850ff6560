"""`pad show OUT KEY --png FILE`: one sample drawn with its masks (tinted), boxes and tags."""

from __future__ import annotations

import colorsys
import io

import numpy as np
import pyarrow.parquet as pq
from PIL import Image, ImageDraw, ImageFont

from pad_pipeline.annotate.ops.rle import decode_mask
from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.layout import BuildLayout
from pad_pipeline.dataset.reader import committed_records, iter_tar_samples
from pad_pipeline.dataset.records import Sample


def find_sample(out: str, key: str) -> Sample:
    """The committed sample `key` (shards are located through their parquet index)."""
    layout = BuildLayout(out)
    for index, record in sorted(committed_records(out).items()):
        idx_url = layout.index(index)
        if storage.exists(idx_url):
            keys = pq.read_table(io.BytesIO(storage.read_bytes(idx_url)), columns=["key"]).column("key").to_pylist()
            if key not in keys:
                continue
        for sample in iter_tar_samples(storage.read_bytes(layout.tar(index)), record.tar):
            if sample.key == key:
                return sample
    raise PadError(f"{out}: no committed sample with key {key!r} (keys look like 00000_00000030_jpg)")


def _colour(i: int) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb((i * 0.618) % 1.0, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def render_sample(sample: Sample, min_side: int = 384) -> Image.Image:
    """The sample's image with tinted masks, boxes and tags; small images are enlarged to be legible."""
    image = Image.open(io.BytesIO(sample.image)).convert("RGB")
    w, h = image.size
    canvas = np.asarray(image, dtype=np.float32).copy()
    labels = sample.record.labels
    for i, label in enumerate(labels):
        m = decode_mask(label.rle_mask, h, w).astype(bool)
        canvas[m] = 0.55 * canvas[m] + 0.45 * np.array(_colour(i), np.float32)
    out = Image.fromarray(canvas.clip(0, 255).astype(np.uint8))
    scale = max(1, -(-min_side // min(w, h)))
    if scale > 1:
        out = out.resize((w * scale, h * scale), Image.Resampling.NEAREST)
        w, h = out.size
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=max(12, min(w, h) // 28))
    for i, label in enumerate(labels):
        x0, y0, x1, y1 = (c * scale for c in label.bbox)
        draw.rectangle([x0, y0, x1, y1], outline=_colour(i), width=2)
        draw.text((x0 + 3, y0 + 2), f"{label.tag} {label.score:.2f}", fill=_colour(i), font=font,
                  stroke_width=1, stroke_fill=(0, 0, 0))
    tags = ", ".join(sample.record.tags)
    draw.text((4, h - font.size - 6), f"tags: {tags}"[:120], fill=(255, 255, 255), font=font,
              stroke_width=1, stroke_fill=(0, 0, 0))
    return out


def show(out: str, key: str, png: str) -> None:
    buf = io.BytesIO()
    render_sample(find_sample(out, key)).save(buf, format="PNG")
    storage.write_bytes(png, buf.getvalue())
