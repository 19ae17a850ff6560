"""`pad sft` on the demo conversations through DeepSpeed ZeRO-3 on CPU (gloo): SIGKILL after a checkpoint,
`--resume`, and the same losses as an uninterrupted run; the checkpoints hold the whole trained model."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from trainer.training import checkpoint

pytestmark = pytest.mark.integration
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = 6


def _start(out: str, resume: bool = False) -> subprocess.Popen:
    overrides = [f"train.output_dir={out}", f"train.max_steps={STEPS}", "train.save_every=2", "init.projector=null",
                 "train.keep_checkpoints=10", "train.progress=false", "train.tensorboard=false",
                 "data.num_workers=1", "export.formats=[]", "train.deepspeed=cluster/deepspeed/zero3.json"]
    code = ("import sys; from trainer.training.driver import run_sft as run; "
            f"sys.exit(run('manifests/sft-demo.yaml', {overrides!r}, resume={resume}))")
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _rows(out: str) -> list[dict]:
    with open(os.path.join(out, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
    return rows


def _finish(proc: subprocess.Popen) -> str:
    output, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, output[-3000:]
    return output


def test_kill_resume_matches_uninterrupted_run_under_zero3(tmp_path):
    full_dir, crash_dir = str(tmp_path / "full"), str(tmp_path / "crash")
    full, crash = _start(full_dir), _start(crash_dir)
    deadline = time.time() + 300
    while checkpoint.latest_checkpoint(crash_dir) is None and crash.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    crash.send_signal(signal.SIGKILL)
    crash.communicate()
    assert crash.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    resumed_from = checkpoint.read_state(checkpoint.latest_checkpoint(crash_dir))["step"]
    assert 2 <= resumed_from < STEPS
    _finish(full)
    _finish(_start(crash_dir, resume=True))

    expected, got = _rows(full_dir), _rows(crash_dir)
    assert len(expected) == len(got) == STEPS
    for a, b in zip(expected, got, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5, abs=1e-6), a["step"]
        assert (b["samples"], b["target_tokens"]) == (a["samples"], a["target_tokens"])
    assert all(r["samples"] == 8 and r["skipped_samples"] == 0 for r in expected)
    assert len({round(r["loss"], 5) for r in expected}) > 1

    final = [os.path.join(d, "checkpoints", "step-00000006") for d in (full_dir, crash_dir)]
    weights = {}
    for name in ("llm", "projector"):
        a, b = (load_file(os.path.join(f, f"{name}.safetensors")) for f in final)
        assert sorted(a) == sorted(b) and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
        weights[name] = a
    assert {"lm_head.weight", "model.embed_tokens.weight", "model.layers.1.mlp.up_proj.weight"} <= set(weights["llm"])
    assert sorted(weights["projector"]) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    assert checkpoint.read_state(final[1])["stage"] == "sft"
