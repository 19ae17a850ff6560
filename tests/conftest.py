"""Shared test set-up: deterministic, CPU-friendly torch; no network for model hubs."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

import torch  # noqa: E402

torch.set_flush_denormal(True)
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


import io  # noqa: E402
import struct  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402


def _png_with_claimed_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height: a decompression bomb without the memory."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr:ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4:ihdr + 13]))
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def make_bad_corpus(folder: Path) -> dict[str, str]:
    """Write the bad-input corpus; returns file name -> expected outcome ("sample" or failure reason)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), "RGB")
    expected = {}

    def save(name, im, outcome, **kw):
        im.save(folder / name, **kw)
        expected[name] = outcome

    (folder / "empty.jpg").write_bytes(b"")
    expected["empty.jpg"] = "empty_file"
    full = io.BytesIO()
    rgb.save(full, format="JPEG", quality=90)
    (folder / "truncated.jpg").write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    expected["truncated.jpg"] = "truncated"
    (folder / "page.jpg").write_bytes(b"<html><body>404 Not Found</body></html>")
    expected["page.jpg"] = "not_an_image"
    save("cmyk.jpg", rgb.convert("CMYK"), "sample", format="JPEG")
    sixteen = Image.fromarray((rng.integers(0, 65535, (40, 50))).astype(np.uint16))
    save("sixteen.png", sixteen, "sample")
    pal = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    save("palette_alpha.png", pal, "sample", transparency=0)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(128)
    save("rgba.png", rgba, "sample")
    save("gray.png", rgb.convert("L"), "sample")
    save("one_pixel.png", Image.new("RGB", (1, 1), (255, 0, 0)), "too_small")
    (folder / "bomb.png").write_bytes(_png_with_claimed_size(40000, 40000))
    expected["bomb.png"] = "too_large"
    exif = Image.Exif()
    exif[0x0112] = 6
    save("exif6.jpg", rgb, "sample", format="JPEG", exif=exif, quality=95)
    return expected


@pytest.fixture
def bad_corpus(tmp_path):
    folder = tmp_path / "bad"
    return folder, make_bad_corpus(folder)
