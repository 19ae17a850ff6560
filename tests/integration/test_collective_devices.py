"""Training steps the way a GPU run takes them, on the CPU: the collectives refuse tensors off the engine's
device, as NCCL refuses CPU tensors, and every tensor a step creates without naming a device lands off it (as
it lands on the CPU in a GPU run). Stage 1 (ZeRO-2) and stage 2 (ZeRO-3), checkpoints included. Before the
fix, the loop's metric all-reduce failed here exactly as it failed on an H200."""

import json
import os
import subprocess
import sys

import pytest

from pad_pipeline.dataset.synthetic import random_field_build

pytestmark = pytest.mark.integration
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = """
import json, sys
import torch
sys.path.insert(0, "tests")
from device_guard import guard_training_steps
import trainer.training.loop
from pad_pipeline.cli import main

command, log_path = sys.argv[1], sys.argv[2]
with guard_training_steps(trainer.training.loop, torch.device("cpu")) as guard:
    code = main([command, *sys.argv[3:]])
json.dump({"code": code, "calls": guard.log.calls}, open(log_path, "w"))
sys.exit(code)
"""


def _guarded(tmp_path, command: str, *args: str) -> dict:
    log = tmp_path / f"{command}.json"
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, command, str(log), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return json.loads(log.read_text())


def test_stage1_and_stage2_steps_pass_the_nccl_like_guard(tmp_path):
    data, stage1, stage2 = str(tmp_path / "pad"), str(tmp_path / "stage1"), str(tmp_path / "stage2")
    random_field_build(data, num_samples=16, shard_size=8)
    common = ["--set", "train.max_steps=2", "--set", "train.save_every=1", "--set", "train.progress=false",
              "--set", "data.num_workers=1", "--set", "launch.mode=local"]
    first = _guarded(tmp_path, "pretrain", "manifests/pretrain-demo.yaml", "--set", f"data.path={data}",
                     "--set", f"train.output_dir={stage1}", *common)
    second = _guarded(tmp_path, "sft", "manifests/sft-demo.yaml", "--set", f"init.projector={stage1}",
                      "--set", f"train.output_dir={stage2}", "--set", "export.formats=[]", *common)
    for run in (first, second):
        assert run["code"] == 0
        assert run["calls"].count("broadcast_object_list") >= 2  # the resume decision and the data plan
        assert "all_reduce" in run["calls"]  # the metrics of every step, guarded
    rows = [json.loads(line) for line in open(os.path.join(stage2, "metrics.jsonl"))]
    assert [r["step"] for r in rows] == [1, 2]
