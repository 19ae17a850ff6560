"""Bytes read from a WebDataset source per build: the plan, every shard task's reads, and a rerun's resume.

Generates `--samples` samples in img2dataset's layout (`<key>.jpg`, `<key>.txt`, `<key>.json`) in tars of
`--per-tar` samples, once uncompressed and once as `.tar.gz` (kept in a cache folder so that runs compare
the same bytes), and serves them through `countfs://`, a counting fsspec file system that reads like an
object store (s3fs, gcsfs): opened files are fetched in 5 MiB read-ahead blocks, `cat_file` ranges
exactly; `--cache none` fetches only the bytes asked for (like a local disk). It then does what
`pad annotate` does with a source, without the models: `make_or_resume_plan` (list + probe), each
shard's `fetch_bytes` (what a shard task reads), then `make_or_resume_plan` again (the resume of a rerun),
and prints the bytes fetched by each as multiples of the source's size.

`--code DIR` imports `pad_pipeline` from DIR, so the code of another commit is measured by this same
script: `git archive HEAD | tar -x -C /tmp/pad-before && python bench/sources.py --code /tmp/pad-before`.
Usage: python bench/sources.py [--samples 6000] [--per-tar 6000] [--shard-size 1000] [--cache none]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import fsspec
import numpy as np
from fsspec.implementations.local import LocalFileSystem
from fsspec.spec import AbstractBufferedFile, AbstractFileSystem
from PIL import Image

BLOCK = 5 * 2**20  # s3fs / gcsfs default block size


class CountingStore(AbstractFileSystem):
    """Local files served like an object store, counting every byte and request fetched."""

    protocol = "countfs"
    cache_type = "readahead"
    fetched = 0
    requests = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.local = LocalFileSystem()

    @classmethod
    def count(cls, data: bytes) -> bytes:
        cls.fetched += len(data)
        cls.requests += 1
        return data

    def info(self, path, **kwargs):
        return {**self.local.info(self._strip_protocol(path)), "name": self._strip_protocol(path)}

    def ls(self, path, detail=True, **kwargs):
        return self.local.ls(self._strip_protocol(path), detail=detail)

    def _open(self, path, mode="rb", block_size=None, autocommit=True, cache_options=None, **kwargs):
        return CountingFile(self, path, mode, block_size=block_size or BLOCK, cache_type=self.cache_type)

    def cat_file(self, path, start=None, end=None, **kwargs):  # one ranged GET, as s3fs / gcsfs / http
        with open(self._strip_protocol(path), "rb") as f:
            f.seek(start or 0)
            return self.count(f.read() if end is None else f.read(end - (start or 0)))


class CountingFile(AbstractBufferedFile):
    def _fetch_range(self, start: int, end: int) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(start)
            return CountingStore.count(f.read(end - start))


def _jpegs(count: int, rng: np.random.Generator) -> list[bytes]:
    """`count` distinct JPEGs of 160-320 px (smoothed noise: ~10-25 KB, like web thumbnails)."""
    out = []
    for _ in range(count):
        h, w = rng.integers(160, 321, 2)
        small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
        im = Image.fromarray(small).resize((int(w), int(h)), Image.BILINEAR)
        noisy = np.asarray(im, np.int16) + rng.integers(-12, 13, (h, w, 3))
        buf = io.BytesIO()
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 1577836800
    tar.addfile(info, io.BytesIO(data))


def make_source(folder: Path, samples: int, per_tar: int) -> dict[str, str]:
    """The tars (both formats) under `folder`, made once; format -> local brace pattern."""
    n_tars = -(-samples // per_tar)
    patterns = {ext: str(folder / f"{{00000..{n_tars - 1:05d}}}.{ext}") for ext in ("tar", "tar.gz")}
    if (folder / "done").exists():
        return patterns
    folder.mkdir(parents=True, exist_ok=True)
    pool = _jpegs(256, np.random.default_rng(0))
    for t in range(n_tars):
        for ext, mode in (("tar", "w"), ("tar.gz", "w:gz")):
            with tarfile.open(folder / f"{t:05d}.{ext}", mode) as tar:
                for i in range(t * per_tar, min(samples, (t + 1) * per_tar)):
                    key, caption = f"{t:05d}{i:04d}", f"a photo of thing number {i} on a sunny day"
                    _add(tar, f"{key}.jpg", pool[i % len(pool)])
                    _add(tar, f"{key}.txt", caption.encode())
                    _add(tar, f"{key}.json", json.dumps({"key": key, "caption": caption, "status": "success",
                                                         "url": f"https://example.com/{key}.jpg"}).encode())
    (folder / "done").write_text("")
    return patterns


def measure(pattern: str, shard_size: int, out: str) -> dict[str, float]:
    """Bytes and requests fetched from the store by the plan, the shard tasks and the resume."""
    from pad_pipeline.annotate.config import AnnotateConfig
    from pad_pipeline.annotate.plan import make_or_resume_plan
    from pad_pipeline.annotate.sources import fetch_bytes
    from pad_pipeline.dataset.reader import read_shard_inputs

    cfg = AnnotateConfig(source={"kind": "webdataset", "path": f"countfs://{pattern}"},
                         output={"path": out, "shard_size": shard_size})
    figures: dict[str, float] = {}
    quiet = io.StringIO()
    CountingStore.fetched = CountingStore.requests = 0
    t0 = time.perf_counter()
    plan = make_or_resume_plan(cfg, out, stream=quiet)
    figures.update(plan=CountingStore.fetched, plan_s=time.perf_counter() - t0, shards=plan.num_shards)
    CountingStore.fetched = CountingStore.requests = 0
    images = 0
    for index in range(plan.num_shards):
        got = fetch_bytes(inp.location for inp in read_shard_inputs(plan, index))
        images += sum(isinstance(v, bytes) for v in got.values())
    figures.update(fetch=CountingStore.fetched, fetch_requests=CountingStore.requests, images=images)
    CountingStore.fetched = CountingStore.requests = 0
    t0 = time.perf_counter()
    make_or_resume_plan(cfg, out, stream=quiet)
    figures.update(resume=CountingStore.fetched, resume_s=time.perf_counter() - t0)
    return figures


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=6000)
    ap.add_argument("--per-tar", type=int, default=6000)
    ap.add_argument("--shard-size", type=int, default=1000)
    ap.add_argument("--cache", choices=["readahead", "none"], default="readahead")
    ap.add_argument("--code", help="import pad_pipeline from this folder (another commit's tree)")
    ap.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "pad-bench-sources"))
    args = ap.parse_args()
    if args.code:
        sys.path.insert(0, os.path.abspath(args.code))
    import pad_pipeline

    fsspec.register_implementation("countfs", CountingStore, clobber=True)
    CountingStore.cache_type = args.cache
    folder = Path(args.data) / f"{args.samples}x{args.per_tar}"
    patterns = make_source(folder, args.samples, args.per_tar)
    print(f"code: {os.path.dirname(os.path.dirname(pad_pipeline.__file__))}; {args.samples} samples in tars of "
          f"{args.per_tar}; shard_size {args.shard_size}; store reads: {args.cache}")
    for ext, pattern in patterns.items():
        source = sum(p.stat().st_size for p in folder.glob(f"*.{ext}"))
        with tempfile.TemporaryDirectory() as out:
            f = measure(pattern, args.shard_size, out)
        mb = 2**20
        print(f".{ext:6s} source {source / mb:6.1f} MiB | {f['shards']:3.0f} shards, {f['images']:.0f} images read | "
              f"plan {f['plan'] / mb:7.1f} MiB ({f['plan'] / source:4.2f}x, {f['plan_s']:.1f}s) | "
              f"shard tasks {f['fetch'] / mb:7.1f} MiB ({f['fetch'] / source:4.2f}x, "
              f"{f['fetch_requests']:.0f} requests) | "
              f"build {(f['plan'] + f['fetch']) / source:4.2f}x | "
              f"rerun {f['resume'] / mb:6.1f} MiB ({f['resume_s']:.2f}s)")


if __name__ == "__main__":
    main()
