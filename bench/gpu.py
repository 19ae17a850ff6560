"""PAD on one GPU, in one command: the chip's bf16 matmul peak, the annotation chains as an annotator actor
runs them, the same work the way Grounded-SAM's loop does it, and the 7B training steps. One table, as JSON too.

Everything runs with random weights at the real sizes, built on the device from the real architectures'
configs (bench/real_configs.py; nothing is downloaded), fed uint8 images of LLaVA-558K-like sizes:

  peak      a bf16 8192^3 matmul: the ceiling the MFU figures are read against.
  paper     RAM++ Swin-L/384 -> Grounding DINO-T -> NMS -> SAM ViT-H through PAD's own wrappers, stages and
            `Annotator` (bf16 autocast, SDPA, uint8 to the device, RLE from the device) at three batch
            sizes: images/s, ms per stage (`Annotator.timings`), peak GPU memory, and achieved TFLOP/s against
            the FLOPs bench/flop_count.py counts on this very work (per stage and in all).
  peer      the same models and per-image work as Grounded-SAM's loop does it (bench/gpu_peer.py: fp32, one
            image at a time, host-side processors, host NMS and RLE); the row says PAD / peer.
  fast      RAM++ -> MM Grounding DINO-T -> SAM 2.1 Hiera-S (the `fast` preset) the same way, and Hiera-L.
  compile   `models.compile: true` (SAM's / SAM 2's image encoder and RAM's Swin compiled), with the time the
            compilation took and how many records equal the uncompiled run's.
  train     a stage-1 step of the 7B setting (CLIP ViT-L/14-336, Vicuna-7B-shaped Llama, mlp2x_gelu, bf16,
            gradient checkpointing, micro-batch 16, patch loss on) and a stage-2 step: samples/s, tokens/s, MFU,
            first with a plain torch AdamW (bench/gpu_train.py), then through PAD's own `TrainingEngine`
            (DeepSpeed ZeRO-2 for stage 1, ZeRO-3 for stage 2; `torch_adam` as shipped, and DeepSpeed's fused
            Adam for stage 1 on CUDA), then `pad pretrain` -> `pad sft` on the demo manifests with the HF export
            generating on the device (bench/gpu_engine.py).

It imports nothing the GPU image lacks but the wheels `bench/gpu_wheels.sh` puts in `.whl/` (pydantic,
pycocotools, DeepSpeed built with DS_BUILD_OPS=0, hjson: bench/gpu_env.py), and never Ray or webdataset. Each
section has a cap and the run a deadline (`--budget-s`, default 460 s: one run fits in 10 minutes with
start-up); elapsed time is printed per section. `--smoke` runs every section on the CPU at tiny sizes (PAD's
tiny-random twins; compile through Dynamo's eager backend) in well under a minute: the test suite runs it so this
script never rots.

Usage: python bench/gpu.py [--out gpu.json] [--budget-s 460] [--smoke] [--only train,paper]
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]  # bench/, repo
from gpu_env import ABSENT, Budget, SectionTimeout, add_carried_wheels  # noqa: E402

_MISSING = add_carried_wheels()  # before torch: a carried typing_extensions must be the one imported

import torch  # noqa: E402
from gpu_report import Row, write_report  # noqa: E402
from gpu_sections import Plan, Run, SectionSkipped  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="gpu-bench.json", help="where the table is written as JSON")
    ap.add_argument("--budget-s", type=float, default=None, help="deadline of the whole run (default 460, smoke 240)")
    ap.add_argument("--smoke", action="store_true", help="every section at tiny sizes on the CPU")
    ap.add_argument("--device", default=None, help="default: cuda, or cpu with --smoke")
    ap.add_argument("--only", default=None, help="comma-separated section name prefixes (e.g. 'peak,train')")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if _MISSING:
        print(f"[gpu.py] cannot import {', '.join(_MISSING)}: run bench/gpu_wheels.sh where pip reaches PyPI and "
              f"bring .whl/ along", file=sys.stderr)
        return 2
    device = torch.device(args.device or ("cpu" if args.smoke else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        print("[gpu.py] no CUDA device; use --smoke on a CPU", file=sys.stderr)
        return 2
    plan = Plan.for_smoke() if args.smoke else Plan.for_gpu()
    budget = Budget(args.budget_s or plan.budget_s)
    run = Run(plan, device, budget)
    started = time.time()
    prefixes = tuple(p.strip() for p in args.only.split(",")) if args.only else ("",)
    for name, cap, fn in run.sections():
        if not name.startswith(prefixes):
            continue
        try:
            with budget.section(name, cap):
                fn()
        except (SectionTimeout, SectionSkipped) as e:
            run.rows.append(Row(name, "skipped", note=str(e)))
            run.recover()
        except Exception as e:  # noqa: BLE001 - one broken section must not lose the rest of a GPU run
            traceback.print_exc()
            run.rows.append(Row(name, "failed", note=f"{type(e).__name__}: {str(e)[:160]}"))
            run.failed.append(name)
            if args.smoke:
                break
            run.recover()
    imported = sorted(m for m in ABSENT if m in sys.modules)
    write_report(run.rows, Path(args.out), device, started, budget.seconds, imported)
    if imported:
        print(f"[gpu.py] imported what the GPU image lacks: {', '.join(imported)}", file=sys.stderr)
    return 1 if run.failed or imported or not run.rows else 0


if __name__ == "__main__":
    sys.exit(main())
