"""`pad stats` throughput and memory: samples/s of `compute_stats` on generated builds of two sizes.

Writes random-field builds (`pad_pipeline.dataset.synthetic.random_field_build`, 2-3 labels per sample)
of each size in `--sizes`, then times one process streaming each through `compute_stats`, with the
peak Python heap (tracemalloc) during the pass: it should not grow with the build. The figure for a
558K-sample build is extrapolated from the rate. Usage: python bench/stats.py [--sizes 3000,30000]
[--shard-size 1000] [--keep DIR] (reuse builds in DIR across runs).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc

from pad_pipeline.dataset.synthetic import random_field_build
from pad_pipeline.tools.stats import compute_stats


def measure(out: str, samples: int, shard_size: int) -> tuple[float, float, int, int]:
    t0 = time.perf_counter()
    random_field_build(out, samples, shard_size=shard_size)
    built = time.perf_counter() - t0
    start, cpu = time.perf_counter(), time.process_time()
    stats = compute_stats(out)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    tracemalloc.start()  # a second pass for memory: tracemalloc slows allocation-heavy code several times
    compute_stats(out)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert stats.samples == samples, (stats.samples, samples)
    print(f"  {samples} samples: build written in {built:.1f}s; stats in {elapsed:.2f}s "
          f"({samples / elapsed:.0f} samples/s wall, {samples / cpu:.0f} per CPU-second, "
          f"{stats.regions / elapsed:.0f} regions/s, traced heap peak "
          f"{peak / 2**20:.1f} MiB, {stats.committed_shards} shards)", flush=True)
    return samples / elapsed, samples / cpu, peak, stats.regions


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="3000,30000", help="comma-separated sample counts")
    ap.add_argument("--shard-size", type=int, default=1000)
    ap.add_argument("--keep", help="folder for the builds (reused when present); default: a temporary one")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or tmp
        print(f"pad stats bench (one process; {os.cpu_count()} cores on this machine):")
        results = [measure(os.path.join(root, f"random-{n}"), n, args.shard_size) for n in sizes]
    rate, per_cpu, _, _ = results[-1]
    print(f"stats: {rate:.0f} samples/s wall ({per_cpu:.0f} per CPU-second) in one process at {sizes[-1]} "
          f"samples; heap peak "
          f"{', '.join(f'{r[2] / 2**20:.1f}' for r in results)} MiB for {args.sizes} samples; "
          f"a 558K-sample build: ~{558_000 / rate / 60:.1f} min")


if __name__ == "__main__":
    main()
