"""Helpers shared by the tests: generated corpora and manifests (nothing is downloaded)."""

import io
import json
import os
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


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


def write_manifest(path: Path, source_dir: Path, out: Path, shard_size: int = 3, **runner) -> Path:
    """A tiny-random annotate manifest over an image folder."""
    manifest = {
        "source": {"kind": "image_dir", "path": str(source_dir)},
        "output": {"path": str(out), "shard_size": shard_size},
        "models": {"preset": "tiny-random"},
        "runner": {"annotators": 1, "batch_size": 4, "torch_threads": 1, **runner},
    }
    path.write_text(yaml.safe_dump(manifest))
    return path


def pad_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pad_pipeline.cli", *args]


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def hooks_json(**hooks: float) -> str:
    """The value of `PAD_TEST_HOOKS` that sets `hooks` (fault injection, `pad_pipeline.core.hooks`)."""
    return json.dumps(hooks)


def good_images(folder: Path, n: int, seed: int = 0) -> list[str]:
    """Write `n` small random JPEGs with a bright square each; returns their file names."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        h, w = int(rng.integers(40, 90)), int(rng.integers(40, 90))
        arr = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        arr[h // 4: h // 2, w // 4: w // 2] = (250, 20, 20)
        names.append(f"img_{i:03d}.jpg")
        Image.fromarray(arr).save(folder / names[-1], quality=90)
    return names


def build_contents(out: Path) -> tuple[list[str], dict[str, str]]:
    """(image ids of all committed samples, in order; failures) of a build: for the invariant checks."""
    from pad_pipeline.dataset.reader import committed_records, iter_committed_samples

    failures: dict[str, str] = {}
    for record in committed_records(str(out)).values():
        failures.update(record.failures)
    ids = [s.record.image_id for s in iter_committed_samples(str(out))]
    return ids, failures


def assert_each_input_once(out: Path, inputs: set[str]) -> None:
    """The invariant: every input is exactly once a committed sample or a named failure."""
    ids, failures = build_contents(out)
    assert len(ids) == len(set(ids)), "duplicate samples"
    assert not set(ids) & set(failures), "an image is both a sample and a failure"
    assert set(ids) | set(failures) == inputs


# A small `pad analyze` manifest (tiny-random models, one training run) for the analysis tests.
ANALYZE_BASE = {
    "output_dir": "OUT",
    "model": {"vision": {"checkpoint": "tiny-random"}, "llm": {"checkpoint": "tiny-random"},
              "projector": {"kind": "mlp2x_gelu"}},
    "data": {"path": "DATA"},
    "projectors": {"random": {}, "trained": {"source": "train:pa"}},
    "train": {"common": {"data": {"path": "TRAIN"}, "train": {"max_steps": 3, "global_batch_size": 4,
                                                              "micro_batch_size": 4}},
              "runs": {"pa": {"beta_max": 5, "set": {"train.lr": 0.01}}}},
}


def write_analyze_manifest(tmp_path, data):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)
