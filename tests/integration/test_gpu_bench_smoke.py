"""bench/gpu.py --smoke on the CPU: every section runs at tiny sizes and prints its row, and nothing the GPU
image lacks and the bench does not carry (Ray, webdataset) is imported on the way; the training sections run
PAD's own DeepSpeed engine (gloo here) and the demo's pretrain -> sft -> HF export."""

import json
import subprocess
import sys

from helpers import REPO, subprocess_env

SECTIONS = ["peak", "paper: build", "paper: PAD", "paper: costs", "paper: FLOPs", "paper: peer", "fast: build",
            "fast: PAD", "fast: costs", "fast: FLOPs", "fast: peer", "train: stage 1", "train: stage 2",
            "train: engine stage 1", "train: engine stage 2", "train: engine fused Adam", "train: end to end",
            "paper: compile", "fast: compile"]
WRAPPER = """import json, runpy, sys
sys.argv = ["bench/gpu.py", "--smoke", "--out", sys.argv[1]]
try:
    runpy.run_path("bench/gpu.py", run_name="__main__")
finally:
    absent = ("ray", "webdataset")
    print("LOADED=" + json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in absent)))
"""


def test_every_section_runs_at_tiny_sizes_and_prints_its_row(tmp_path):
    out = tmp_path / "gpu.json"
    run = subprocess.run([sys.executable, "-c", WRAPPER, str(out)], cwd=REPO, env=subprocess_env(),
                         capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "LOADED=[]" in run.stdout  # the bench's import path is the GPU image's
    for name in SECTIONS:
        assert f"[gpu.py] {name}: " in run.stdout, name
    data = json.loads(out.read_text())
    assert data["absent_modules_imported"] == [] and set(data["section_seconds"]) == set(SECTIONS)
    rows = {(r["section"], r["run"], r["batch"]): r for r in data["rows"]}
    assert data["markdown"] in run.stdout and not any(r["run"] in ("failed", "skipped") for r in data["rows"])
    assert rows[("peak", "bf16 matmul 256^3", None)]["rate"] > 0
    for chain, batches in (("paper", (1, 2)), ("fast", (1,))):
        for b in batches:
            pad = rows[(chain, "PAD", b)]
            assert pad["rate"] > 0 and set(pad["stage_ms"]) == {"tag", "detect", "nms", "segment", "encode"}
            assert pad["tflops"] > 0 and "10.0 boxes/img" in pad["note"]
        peer = rows[(chain, "peer (Grounded-SAM loop, fp32)", 1)]
        assert peer["rate"] > 0 and "PAD / peer = " in peer["note"] and "10.0 boxes/img" in peer["note"]
        compiled = rows[(chain, "PAD compiled", 1)]
        assert compiled["rate"] > 0 and "records equal to uncompiled: 2/2" in compiled["note"]
        # issue 20's rows: records across batch sizes, syncs per stage (the counts the stages' docstrings
        # state), GPU-only busy fraction, 558K GPU-hours
        assert f"2/2 images equal at batches {', '.join(map(str, batches))}" in \
            rows[(chain, "records equal across PAD batch sizes", None)]["note"]
        costs = rows[(chain, "host syncs per batch, per image costs", max(batches))]["note"]
        assert "tag 1 syncs" in costs and "detect 2 syncs" in costs and "encode 2 syncs" in costs
        assert (chain, "GPU busy fraction: CUDA only, not measured here", max(batches)) in rows
        best = max(batches, key=lambda b: rows[(chain, "PAD", b)]["rate"])
        hours = rows[(chain, f"558K build at the best rate (batch {best})", best)]["note"]
        assert "CPU (smoke sizes: not a real figure)-hours" in hours
    stage1 = rows[("train", "stage 1 step (projector; caption + patch loss)", 2)]
    assert stage1["rate"] > 0 and stage1["tflops"] > 0
    stage2 = rows[("train", "stage 2 step (projector + LLM; LM loss)", 2)]
    assert stage2["rate"] > 0 and stage2["tflops"] > 0
    for stage, zero in ((1, "ZeRO-2"), (2, "ZeRO-3")):
        engine = rows[("train", f"stage {stage} engine step ({zero}, DeepSpeed torch_adam)", 2)]
        assert engine["rate"] > 0 and engine["tflops"] > 0 and "PAD's TrainingEngine" in engine["note"]
    assert ("train", "stage 1 engine step (ZeRO-2, DeepSpeed fused Adam (JIT)): CUDA only, not run here", None) in rows
    e2e = rows[("train", "pad pretrain -> pad sft -> export-hf generate (demo, tiny)", None)]
    assert "pretrain" in e2e["note"] and "export logits on cpu" in e2e["note"]
