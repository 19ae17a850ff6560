"""The CPU proxy of issue 20: per stage, aten ops dispatched per image and host syncs per batch.

Runs PAD's annotation chain (the `Annotator`'s stages, PAD's own wrappers) on a few images with
`pad_pipeline.annotate.op_counter.OpCounter` around each stage, at the tiny sizes (PAD's tiny-random
twins, as in the tests) and, with `--real`, at the real sizes (random weights, bench/real_configs.py's
architectures: RAM++ Swin-L, Grounding DINO-T, SAM ViT-H for `paper`; MM Grounding DINO-T and SAM 2.1
Hiera-S for `fast`). No GPU is needed: an aten op is an upper bound of a kernel launch, a counted sync
a point where a GPU run would make the host wait. The workload is bench/gpu.py's (12 tags, every box
kept, NMS to 10 boxes per image).

Usage: python bench/sync_proxy.py [--real] [--chain paper|fast] [--images 2] [--batch 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]  # bench/, repo

import torch  # noqa: E402
from gpu_models import build_parts, pad_annotator, workload_images  # noqa: E402

from pad_pipeline.annotate.op_counter import count_stages  # noqa: E402
from pad_pipeline.core.runtime import prepare_cpu_threads  # noqa: E402


def measure(chain: str, images: int, batch: int, real: bool) -> list[tuple[str, float, float, str]]:
    """(stage, aten ops per image, syncs per batch, the sync ops seen) for `images` images in batches."""
    device = torch.device("cpu")
    parts = build_parts(chain, device, smoke=not real)
    annotator = pad_annotator(parts, batch, device)
    ims = workload_images(images, smoke=not real)
    totals: dict[str, list] = {}
    batches = 0
    for start in range(0, images, batch):
        counters = count_stages(annotator.stages, ims[start:start + batch])
        batches += 1
        for name, c in counters.items():
            row = totals.setdefault(name, [0, 0, {}])
            row[0] += c.ops
            row[1] += c.syncs
            for op, n in c.sync_ops.items():
                row[2][op] = row[2].get(op, 0) + n
    return [(name, ops / images, syncs / batches, ", ".join(f"{k} {v}" for k, v in sorted(seen.items())))
            for name, (ops, syncs, seen) in totals.items()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--real", action="store_true", help="real sizes (random weights); default tiny")
    ap.add_argument("--chain", default="paper", choices=["paper", "fast"])
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--batch", type=int, default=2)
    args = ap.parse_args(argv)
    prepare_cpu_threads()
    t0 = time.time()
    rows = measure(args.chain, args.images, args.batch, args.real)
    size = "real" if args.real else "tiny"
    print(f"| {args.chain} ({size}, {args.images} images, batch {args.batch}) | aten ops / image | syncs / batch "
          "| sync ops (all batches) |")
    print("| --- | ---: | ---: | --- |")
    for name, ops, syncs, seen in rows:
        print(f"| {name} | {ops:.0f} | {syncs:.1f} | {seen} |")
    print(f"({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
