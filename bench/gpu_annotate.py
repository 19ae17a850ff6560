"""bench/gpu.py's annotation cost rows (issue 20): what a timed PAD run does besides its rate.

Per chain, after its PAD runs (`costs(run, chain)`):

  records equal across batch sizes   how many images got the same tags and labels at every PAD batch size
                                     timed (an annotation must not depend on its batch).
  syncs and launches per stage       one batch through the stages with `OpCounter` (host syncs per batch,
                                     aten ops per image) and, on CUDA, the profiler's kernel launches per
                                     image; on the CPU aten ops stand for launches.
  GPU busy                           the profiler's kernel time (union of intervals) over the wall time of one
                                     `annotate()` call of the largest batch; CUDA only.
  558K build                         GPU-hours of a 558K build at the chain's best measured rate.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from gpu_models import pad_annotator, restore_text_backbone
from gpu_report import Row

from pad_pipeline.annotate.op_counter import count_stages

LLAVA_558K = 558_128
_LAUNCHES = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx")


def records_equal(eager: dict[tuple[str, int], list[Any]], chain: str) -> Row:
    runs = [results for (c, _), results in sorted(eager.items()) if c == chain]
    batches = sorted(b for c, b in eager if c == chain)
    same = sum(all(r.tags == first.tags and r.labels == first.labels for r in rest)
               for first, *rest in zip(*runs, strict=True)) if runs else 0
    total = len(runs[0]) if runs else 0
    return Row(chain, "records equal across PAD batch sizes", note=f"{same}/{total} images equal at batches "
               f"{', '.join(map(str, batches))}")


def _kernel_stats(prof: Any) -> tuple[int, float]:
    """(kernel launches, busy microseconds: union of the device kernels' intervals) of a profile."""
    launches, spans = 0, []
    for e in prof.events():
        if e.name in _LAUNCHES:
            launches += 1
        elif e.device_type == torch.autograd.DeviceType.CUDA:
            spans.append((e.time_range.start, e.time_range.end))
    busy, end = 0.0, float("-inf")
    for s, t in sorted(spans):
        if t > end:
            busy += t - max(s, end)
            end = t
    return launches, busy


def _profile(fn: Any) -> tuple[int, float, float]:
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    launches, busy_us = _kernel_stats(prof)
    return launches, busy_us / 1e6, wall


def stage_costs(parts: Any, images: list, batch: int, device: torch.device) -> Row:
    annotator = pad_annotator(parts, batch, device)
    try:
        annotator.warm_up()
        ims = images[:batch]
        counters = count_stages(annotator.stages, ims)
        launches = {}
        if device.type == "cuda":
            for stage in annotator.stages:  # each stage profiled on the previous stages' outputs
                b: dict = {"image": ims}
                with torch.inference_mode():
                    for s in annotator.stages[:annotator.stages.index(stage)]:
                        b = s(b)
                    launches[stage.name] = _profile(lambda stage=stage, b=b: stage(dict(b)))[0] / len(ims)
    finally:
        restore_text_backbone(parts)
    cells = [f"{name} {c.syncs} syncs, {c.ops / len(ims):.0f} aten ops"
             + (f", {launches[name]:.0f} launches" if name in launches else "") for name, c in counters.items()]
    total = sum(c.syncs for c in counters.values())
    return Row(parts.name, "host syncs per batch, per image costs", batch,
               note=f"{'; '.join(cells)} (per image; {total} syncs per batch in all)")


def gpu_busy(parts: Any, images: list, batch: int, device: torch.device) -> Row:
    """Busy fraction of one batch, and the rate over all images without per-stage syncs (the PAD rows
    synchronise after every stage for their ms per stage, which stops host and device overlapping)."""
    if device.type != "cuda":
        return Row(parts.name, "GPU busy fraction: CUDA only, not measured here", batch)
    annotator = pad_annotator(parts, batch, device)
    annotator.sync_timings = False
    try:
        annotator.warm_up()
        annotator.annotate(images[:batch])
        launches, busy, wall = _profile(lambda: annotator.annotate(images[:batch]))
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(0, len(images), batch):
            annotator.annotate(images[i:i + batch])
        torch.cuda.synchronize()
        rate = len(images) / (time.perf_counter() - t0)
    finally:
        restore_text_backbone(parts)
    return Row(parts.name, "GPU busy fraction of one batch (profiler)", batch, rate, "img/s",
               note=f"{100 * busy / wall:.0f}% busy ({busy * 1000:.0f} ms kernels / {wall * 1000:.0f} ms wall); "
                    f"{launches / batch:.0f} kernel launches per image; rate without per-stage syncs")


def build_hours(pad_rows: list[Row], chain: str, device: torch.device) -> Row:
    best = max(pad_rows, key=lambda r: r.rate or 0.0, default=None)
    if best is None or not best.rate:
        return Row(chain, "558K build: no PAD rate measured")
    hours = LLAVA_558K / best.rate / 3600
    where = "GPU" if device.type == "cuda" else "CPU (smoke sizes: not a real figure)"
    return Row(chain, f"558K build at the best rate (batch {best.batch})", best.batch,
               note=f"{hours:.1f} {where}-hours for {LLAVA_558K} images at {best.rate:.2f} img/s")
