"""Regenerate the demo corpus in manifests/demo/ (deterministic; the files are committed).

Small scenes of coloured shapes on gradient backgrounds, in the formats a real corpus has: JPEG,
JPEG with EXIF orientation 6, RGBA PNG, grayscale PNG, and one 0-byte file that ends as a named failure.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ["circle", "square", "triangle"]
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 80, 220), "yellow": (230, 210, 40)}


def scene(i: int, rng: np.random.Generator) -> tuple[Image.Image, str]:
    w, h = int(rng.integers(96, 161)), int(rng.integers(96, 161))
    y, x = np.mgrid[0:h, 0:w]
    base = rng.integers(60, 200, 3)
    grad = (base[None, None, :] + 40 * np.sin(x[..., None] / (7 + i) + y[..., None] / 11)).clip(0, 255)
    im = Image.fromarray(grad.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(im)
    names = []
    for _ in range(int(rng.integers(1, 4))):
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
        s = int(rng.integers(18, min(w, h) // 2))
        x0, y0 = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
        box = [x0, y0, x0 + s, y0 + s]
        if shape == "circle":
            draw.ellipse(box, fill=COLOURS[colour])
        elif shape == "square":
            draw.rectangle(box, fill=COLOURS[colour])
        else:
            draw.polygon([(x0, y0 + s), (x0 + s, y0 + s), (x0 + s // 2, y0)], fill=COLOURS[colour])
        names.append(f"a {colour} {shape}")
    return im, " and ".join(names) + " on a patterned background"


def main(root: Path) -> None:
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2505)
    captions = []
    for i in range(12):
        im, caption = scene(i, rng)
        name = f"scene_{i:02d}.jpg"
        if i == 3:
            exif = Image.Exif()
            exif[0x0112] = 6  # stored rotated; intake must apply the orientation
            im.transpose(Image.Transpose.ROTATE_90).save(images / name, quality=90, exif=exif)
        elif i == 5:
            name = f"scene_{i:02d}.png"
            rgba = im.convert("RGBA")
            rgba.putalpha(200)
            rgba.save(images / name)
        elif i == 8:
            name = f"scene_{i:02d}.png"
            im.convert("L").save(images / name)
        else:
            im.save(images / name, quality=90)
        captions.append({"file": name, "caption": caption})
    (images / "broken.jpg").write_bytes(b"")
    captions.append({"file": "broken.jpg", "caption": "an image that failed to download"})
    with open(root / "captions.jsonl", "w") as f:
        for row in captions:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "manifests" / "demo")
