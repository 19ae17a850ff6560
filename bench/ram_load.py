"""Peak host memory of loading a full-size RAM++ checkpoint that also holds optimizer state.

The released `ram_plus_swin_large_14m.pth` is about 3 GB: the model's tensors plus optimizer state.
This benchmark writes a file of that shape into a temporary folder: a random RAM++ state dict in the
official key layout, at full size (Swin-L at 384 px, 4585 tags x 51 descriptions; the network built
from this repo's `ram_plus_swin_large_config`), saved with `torch.save({"model": ..., "optimizer":
...})` where the fake optimizer state is one exp_avg tensor per parameter (the file is then about twice
the model). Then, each in a fresh subprocess, it builds the tagger through the registry builder the
manifest uses (`build_ram_plus_tagger`, `checkpoint:` the file) and reports the process's peak RSS
(`resource.getrusage(...).ru_maxrss`), its RSS before the build, and the seconds the build took.

`--code DIR` loads the pad_pipeline package from another checkout (e.g. the previous commit,
`git archive HEAD | tar -x -C /tmp/pad-before`), so before and after are measured on the same file:

    python bench/ram_load.py --code /tmp/pad-before --code .

Usage: python bench/ram_load.py [--code DIR ...] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NUM_TAGS = 4585  # ram_tag_list.txt


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def write_checkpoint(folder: Path) -> dict:
    """The random full-size RAM++ file (+ optimizer state) and its tag list, in `folder`."""
    import torch

    from pad_pipeline.annotate.models.ram.checkpoint import to_official_state_dict
    from pad_pipeline.annotate.models.ram.model import RamModel, ram_plus_swin_large_config

    with torch.device("meta"):
        shapes = RamModel(ram_plus_swin_large_config(NUM_TAGS)).state_dict()
    gen = torch.Generator().manual_seed(0)
    model = {k: torch.randn(v.shape, generator=gen) * 0.02 for k, v in shapes.items()}
    optimizer = {"state": {i: {"exp_avg": torch.randn(v.shape, generator=gen)} for i, v in enumerate(model.values())},
                 "param_groups": [{"lr": 1e-4, "params": list(range(len(model)))}]}
    path = folder / "ram_plus_swin_large_14m.pth"
    torch.save({"model": to_official_state_dict(model), "optimizer": optimizer, "epoch": 4}, path)
    (folder / "ram_tag_list.txt").write_text("".join(f"tag{i:04d}\n" for i in range(NUM_TAGS)))
    numel = sum(v.numel() for v in model.values())
    return {"file_mb": path.stat().st_size / 2**20, "model_mb": 4 * numel / 2**20, "params_m": numel / 1e6}


def load_once(folder: Path) -> dict:
    """Build the RAM++ tagger from the file in this (fresh) process; its peak RSS."""
    import torch

    from pad_pipeline.annotate.config import ModelsConfig, TaggerConfig
    from pad_pipeline.annotate.models.ram.tagger import build_ram_plus_tagger

    torch.set_num_threads(1)
    cfg = TaggerConfig(kind="ram_plus", checkpoint=str(folder / "ram_plus_swin_large_14m.pth"),
                       tag_list=str(folder / "ram_tag_list.txt"), image_size=384)
    before = _rss_mb()
    t0 = time.perf_counter()
    tagger = build_ram_plus_tagger(cfg, ModelsConfig(device="cpu", dtype="float32"), torch.device("cpu"))
    seconds = time.perf_counter() - t0
    return {"rss_before_mb": before, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_after_mb": _rss_mb(), "seconds": seconds,
            "provenance": {k: v for k, v in tagger.provenance().items() if k.endswith("_keys")}}


def _sub(code: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(code).resolve()), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"sub-run failed ({args}, code {code}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", action="append", help="checkout whose pad_pipeline loads the file (repeatable)")
    ap.add_argument("--keep", help="write the file here and keep it (default: a temporary folder, removed)")
    ap.add_argument("--write", help=argparse.SUPPRESS)
    ap.add_argument("--load", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.write:
        print(json.dumps(write_checkpoint(Path(args.write))))
        return
    if args.load:
        print(json.dumps(load_once(Path(args.load))))
        return
    folder = Path(args.keep or tempfile.mkdtemp(prefix="pad-ram-load-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        sizes = _sub(str(REPO), "--write", str(folder))
        print(f"bench/ram_load.py: RAM++ {sizes['params_m']:.1f} M parameters ({sizes['model_mb']:.0f} MB), "
              f"file with optimizer state {sizes['file_mb']:.0f} MB; {os.cpu_count()} cores", flush=True)
        print("\n| code | peak RSS MB | RSS before build MB | RSS after MB | build s | load report |\n"
              "| --- | --- | --- | --- | --- | --- |")
        for code in args.code or [str(REPO)]:
            r = _sub(code, "--load", str(folder))
            print(f"| {code} | {r['peak_rss_mb']:.0f} | {r['rss_before_mb']:.0f} | {r['rss_after_mb']:.0f} | "
                  f"{r['seconds']:.1f} | {r['provenance']} |", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
