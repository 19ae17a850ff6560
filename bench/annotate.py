"""Annotation throughput on this machine: images/s, pipeline efficiency, CPU outside the models, memory,
and how two declared GPUs scale against two plain processes.

The model size is given on the command line (`--size`): the tiny-random chain with its SAM image encoder
widened/deepened to that size, saved with `save_pretrained` to a temporary folder and loaded by PAD from
that local path (the same code path as a real checkpoint). SAM dominates the real chain's FLOPs too.

Every build runs in a fresh subprocess (`--one-build`) with its own local Ray instance, so the driver's
peak RSS belongs to that build alone. Figures:
- images/s and pipeline efficiency over the drive window (first shard submitted -> last committed; Ray
  start and model loading excluded): efficiency = model-forward seconds (tag + detect + segment, summed
  over actors) / (actors x window).
- CPU ms per image outside the models: shard-task CPU (fetch, decode, tar, write) + NMS + RLE encode.
- peak RSS: driver at N and 2N images (must not grow), actor after 5 and 20 shards (must stay flat).
- scaling: medians over alternating repeats of (a) 1 plain process, (b) 2 plain processes at once,
  (c) PAD with 1 declared GPU, (d) PAD with 2 declared GPUs, one torch thread each; reports
  (d/c) / (b/a) against the 0.9 target.
- Ray's own ceiling on that ratio: (e) 1 and (f) 2 bare annotator actors fed preloaded batches straight
  from a driver (no sources, shards, decode or tar), same repeats; (f/e) / (b/a) is what the Ray runtime
  alone leaves of the plain scaling on this machine, so PAD's figure can be read against it.

The drive window starts when the first shard is dispatched to an already started shard worker; a first
small build in the same Ray instance loads the models, as the first minutes of a long build would.

Usage: python bench/annotate.py [--size medium] [--repeats 5] [--images 192]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

# name -> SAM vision encoder (hidden size, layers, heads, input side); "tiny" is the tiny-random one.
SIZES = {"tiny": None, "small": (128, 4, 4, 256), "medium": (192, 6, 6, 384), "large": (256, 8, 8, 512)}
MODEL_STAGES = ("tag", "detect", "segment")


def make_images(folder: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        y, x = np.mgrid[0:240, 0:320]
        base = rng.integers(40, 200, 3)
        arr = (base + 50 * np.sin(x[..., None] / (5 + i % 7) + y[..., None] / 9)).clip(0, 255).astype(np.uint8)
        x0, y0 = int(rng.integers(0, 200)), int(rng.integers(0, 140))
        arr[y0:y0 + 80, x0:x0 + 100] = rng.integers(0, 255, 3)
        Image.fromarray(arr).save(folder / f"img_{i:04d}.jpg", quality=90)


def save_sam(folder: Path, size: str) -> str:
    """A SAM of the requested size, random weights, saved as a local checkpoint; 'tiny-random' for tiny."""
    if SIZES[size] is None:
        return "tiny-random"
    from transformers import SamModel

    from pad_pipeline.annotate.models.tiny import tiny_sam_config, tiny_sam_image_processor

    width, layers, heads, side = SIZES[size]
    cfg = tiny_sam_config()
    patch = 16
    v = cfg.vision_config
    # Only the image encoder grows; its neck keeps the tiny output channels the decoder expects.
    v.hidden_size, v.num_hidden_layers, v.num_attention_heads = width, layers, heads
    v.mlp_dim = 4 * width
    v.image_size, v.patch_size, v.window_size = side, patch, 8
    v.global_attn_indexes = [layers // 2 - 1, layers - 1]
    p = cfg.prompt_encoder_config
    p.image_size, p.patch_size, p.image_embedding_size = side, patch, side // patch
    import torch

    torch.manual_seed(0)
    model = SamModel(cfg).eval()
    processor = tiny_sam_image_processor()
    processor.size = {"longest_edge": side}
    processor.pad_size = {"height": side, "width": side}
    out = folder / f"sam-{size}"
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return str(out)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_config(args: argparse.Namespace, out: str | None = None):
    """The benchmark's AnnotateConfig: `args.gpus` one-thread actors on declared GPUs, batches of 4."""
    from pad_pipeline.annotate.config import AnnotateConfig
    from pad_pipeline.core.config import build_config

    data = {
        "source": {"kind": "image_dir", "path": args.src, "limit": args.images},
        "models": {"preset": "tiny-random", "segmenter": {"checkpoint": args.sam}, "device": "cpu"},
        "runner": {"annotators": args.gpus, "gpus_per_annotator": 1, "cpus_per_annotator": 0.5,
                   "torch_threads": 1, "batch_size": 4, "cpus_per_shard_worker": 0.25},
    }
    if out:
        data["output"] = {"path": out, "shard_size": args.shard_size}
    return build_config(data, AnnotateConfig, source="bench")  # applies the preset, as a manifest would


def one_build(args: argparse.Namespace) -> dict:
    """Run one PAD build in this process (fresh local Ray); print its figures as JSON."""
    import ray

    from pad_pipeline.ray.driver import run_annotate

    cfg = bench_config(args, out=args.out)
    ray.init(address="local", num_cpus=2, num_gpus=args.gpus, include_dashboard=False, log_to_driver=False)
    # A first build of a few images starts the shard-task worker processes, as a long build would have.
    warm = cfg.model_copy(deep=True)
    warm.output.path = args.out + "-warm"
    warm.source.limit = 4 * args.gpus * cfg.runner.shard_workers_per_annotator
    warm.output.shard_size = 1
    run_annotate(warm, stream=open(os.devnull, "w"))
    s = run_annotate(cfg, stream=open(os.devnull, "w"))
    ray.shutdown()
    if not s.ok or s.samples != s.images:
        raise SystemExit(f"bench build lost images: {s.samples}/{s.images} samples, failed shards {s.failed}")
    model_s = sum(st["stage_seconds"].get(k, 0.0) for st in s.actor_stats for k in MODEL_STAGES)
    outside_s = s.task_cpu_seconds + sum(st["stage_seconds"].get(k, 0.0) for st in s.actor_stats
                                         for k in ("nms", "encode"))
    return {"images": s.images, "window_s": s.drive_seconds, "images_per_s": s.images / s.drive_seconds,
            "efficiency": model_s / (len(s.actor_stats) * s.drive_seconds),
            "model_ms_per_image": 1000 * model_s / max(1, s.images),
            "cpu_ms_outside_per_image": 1000 * outside_s / max(1, s.images),
            "driver_peak_rss_mb": peak_rss_mb(),
            "actor_peak_rss_mb": max(st["peak_rss_mb"] for st in s.actor_stats)}


def plain_rate(args: argparse.Namespace) -> dict:
    """Annotate the images in this plain process (no Ray, 1 thread): images/s excluding model load."""
    import torch

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    from pad_pipeline.annotate.chain import Annotator
    from pad_pipeline.annotate.config import ModelsConfig
    from pad_pipeline.annotate.models.registry import MODEL_PRESETS

    preset = MODEL_PRESETS["tiny-random"]
    models = ModelsConfig.model_validate({**preset, "device": "cpu",
                                          "segmenter": {**preset["segmenter"], "checkpoint": args.sam}})
    annotator = Annotator(models).setup()
    files = sorted(Path(args.src).glob("*.jpg"))[: args.images]
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    annotator.annotate(images[:4])  # warm-up, like the actors' first batch
    t0 = time.perf_counter()
    for i in range(0, len(images), 4):
        annotator.annotate(images[i:i + 4])
    return {"images_per_s": len(images) / (time.perf_counter() - t0)}


def bare_actor_rate(args: argparse.Namespace) -> dict:
    """`--gpus` bare annotator actors, each fed every preloaded batch by this driver: total images/s."""
    import ray

    from pad_pipeline.ray.annotator_actor import create_actors

    cfg = bench_config(args)
    ray.init(address="local", num_cpus=2, num_gpus=args.gpus, include_dashboard=False, log_to_driver=False)
    actors = create_actors(cfg, args.gpus, use_gpus=True)
    files = sorted(Path(args.src).glob("*.jpg"))[: args.images]
    images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    batches = [ray.put(images[i:i + 4]) for i in range(0, len(images), 4)]
    ray.get([a.annotate.remote(batches[0]) for a in actors])  # model load and warm-up
    t0 = time.perf_counter()
    ray.get([a.annotate.remote(b) for a in actors for b in batches])
    rate = len(actors) * len(images) / (time.perf_counter() - t0)
    ray.shutdown()
    return {"images_per_s": rate}


def run_self(mode: str, **kw) -> subprocess.Popen:
    cmd = [sys.executable, __file__, mode] + [f"--{k.replace('_', '-')}={v}" for k, v in kw.items()]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def result(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"sub-run failed ({proc.args})")
    return json.loads(out.strip().splitlines()[-1])


def build(tmp: Path, sam: str, images: int, gpus: int, shard_size: int = 12) -> dict:
    out = tempfile.mkdtemp(dir=tmp)
    return result(run_self("--one-build", src=tmp / "src", out=out, sam=sam, images=images, gpus=gpus,
                           shard_size=shard_size))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=list(SIZES), default="medium")
    ap.add_argument("--images", type=int, default=192, help="images per measured build (shards of 12)")
    ap.add_argument("--repeats", type=int, default=5, help="alternating repeats for the scaling figure")
    ap.add_argument("--one-build", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--src"), ap.add_argument("--out"), ap.add_argument("--sam")
    ap.add_argument("--gpus", type=int, default=1), ap.add_argument("--shard-size", type=int, default=4)
    args = ap.parse_args()
    if args.one_build:
        print(json.dumps(one_build(args)))
        return
    if args.plain:
        print(json.dumps(plain_rate(args)))
        return
    if args.bare:
        print(json.dumps(bare_actor_rate(args)))
        return

    tmp = Path(tempfile.mkdtemp(prefix="pad-bench-"))
    make_images(tmp / "src", max(2 * args.images, 80))
    sam = save_sam(tmp, args.size)
    print(f"bench/annotate.py --size {args.size} --images {args.images} --repeats {args.repeats} "
          f"(SAM encoder {SIZES[args.size] or 'tiny-random'}; {os.cpu_count()} cores)", flush=True)

    main_run = build(tmp, sam, args.images, gpus=1)
    double = build(tmp, sam, 2 * args.images, gpus=1)
    five = build(tmp, sam, 5 * 4, gpus=1, shard_size=4)
    twenty = build(tmp, sam, 20 * 4, gpus=1, shard_size=4)

    rows = {"a": [], "b": [], "c": [], "d": [], "e": [], "f": []}
    for r in range(args.repeats):
        rows["a"].append(result(run_self("--plain", src=tmp / "src", sam=sam, images=args.images))["images_per_s"])
        pair = [run_self("--plain", src=tmp / "src", sam=sam, images=args.images) for _ in range(2)]
        rows["b"].append(sum(result(p)["images_per_s"] for p in pair))
        rows["c"].append(build(tmp, sam, args.images, gpus=1)["images_per_s"])
        rows["d"].append(build(tmp, sam, args.images, gpus=2)["images_per_s"])
        for key, gpus in (("e", 1), ("f", 2)):
            rows[key].append(result(run_self("--bare", src=tmp / "src", sam=sam, images=args.images // 2,
                                             gpus=gpus))["images_per_s"])
        print(f"  repeat {r + 1}: plain 1={rows['a'][-1]:.2f} 2={rows['b'][-1]:.2f} | "
              f"PAD 1 GPU={rows['c'][-1]:.2f} 2 GPUs={rows['d'][-1]:.2f} | "
              f"bare actors 1={rows['e'][-1]:.2f} 2={rows['f'][-1]:.2f} img/s", flush=True)
    med = {k: statistics.median(v) for k, v in rows.items()}
    plain_scaling, pad_scaling = med["b"] / med["a"], med["d"] / med["c"]
    ratio = pad_scaling / plain_scaling
    ray_ceiling = (med["f"] / med["e"]) / plain_scaling
    cores = os.cpu_count() or 1

    def line(name, value, target, ok):
        print(f"| {name} | {value} | {target} | {'met' if ok else 'MISSED'} |")

    print("\n| figure | measured | target | |\n| --- | --- | --- | --- |")
    line("images/s (1 actor)", f"{main_run['images_per_s']:.2f}", "", True)
    line("model forward ms/image", f"{main_run['model_ms_per_image']:.0f}", ">= 50 for the efficiency target",
         main_run["model_ms_per_image"] >= 50)
    line("pipeline efficiency", f"{main_run['efficiency']:.3f}", ">= 0.85", main_run["efficiency"] >= 0.85)
    cpu_ms = main_run["cpu_ms_outside_per_image"]
    line("CPU ms/image outside models (per core)", f"{cpu_ms:.1f} ({cpu_ms / cores:.1f})", "<= 10 per core",
         cpu_ms / cores <= 10)
    line(f"driver peak RSS MB ({args.images} vs {2 * args.images} images)",
         f"{main_run['driver_peak_rss_mb']:.0f} vs {double['driver_peak_rss_mb']:.0f}", "no growth",
         double["driver_peak_rss_mb"] <= 1.05 * main_run["driver_peak_rss_mb"])
    line("actor peak RSS MB (5 vs 20 shards)", f"{five['actor_peak_rss_mb']:.0f} vs {twenty['actor_peak_rss_mb']:.0f}",
         "flat", twenty["actor_peak_rss_mb"] <= 1.05 * five["actor_peak_rss_mb"])
    line("plain scaling 2 procs / 1 (median)", f"{plain_scaling:.2f}", "", True)
    line("PAD scaling 2 GPUs / 1 (median)", f"{pad_scaling:.2f}", "", True)
    line("bare Ray actors scaling 2 / 1 (median)", f"{med['f'] / med['e']:.2f}", "", True)
    line("PAD scaling / plain scaling", f"{ratio:.2f}", ">= 0.9", ratio >= 0.9)
    line("Ray ceiling: bare actors scaling / plain scaling", f"{ray_ceiling:.2f}", "(reference)", True)


if __name__ == "__main__":
    main()
