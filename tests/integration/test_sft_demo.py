"""The three demo commands end to end, each as a user runs it: `pad annotate manifests/demo.yaml` ->
`pad pretrain manifests/pretrain-demo.yaml` -> `pad sft manifests/sft-demo.yaml` (Ray Train, ZeRO-3 on CPU),
stage 2 initialised from stage 1's export; then the stage-2 data check of the same manifest."""

import json
import os
import subprocess
import sys

import pytest
from safetensors.torch import load_file

pytestmark = pytest.mark.integration
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _pad(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a local Ray instance
    env.update(PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "pad_pipeline.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return proc.stdout + proc.stderr


def test_annotate_pretrain_sft(tmp_path):
    build, stage1, stage2 = (str(tmp_path / n) for n in ("demo", "pretrain", "sft"))
    _pad("annotate", "manifests/demo.yaml", "--out", build)
    _pad("pretrain", "manifests/pretrain-demo.yaml", "--set", f"data.path={build}", "--set",
         f"train.output_dir={stage1}", "--set", "train.max_steps=4", "--set", "train.progress=false")
    log = _pad("sft", "manifests/sft-demo.yaml", "--set", f"init.projector={stage1}", "--set",
               f"train.output_dir={stage2}", "--set", "train.max_steps=4", "--set", "train.progress=false",
               "--set", "launch.mode=ray", "--set", "launch.cpus_per_worker=1", "--set", "export.formats=[]")
    assert "40 conversations, template vicuna_v1; ray launch" in log

    rows = [json.loads(line) for line in open(os.path.join(stage2, "metrics.jsonl"))]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(r["samples"] == 8 and r["target_tokens"] > 0 and r["tokens_per_s"] > 0 for r in rows)
    assert all(0.0 < r["loss"] < 20.0 for r in rows)
    final = os.path.join(stage2, "checkpoints", "step-00000004")
    assert {"llm.safetensors", "projector.safetensors", "trainer_state.json"} <= set(os.listdir(final))
    assert os.path.isfile(os.path.join(stage2, "config.yaml")) and os.path.isdir(os.path.join(stage2, "tensorboard"))

    # stage 2 started from stage 1's projector and moved it
    start = load_file(os.path.join(stage1, "export", "projector.safetensors"))
    trained = load_file(os.path.join(final, "projector.safetensors"))
    drift = max(float((trained[k].float() - start[k].float()).abs().max()) for k in start)
    assert 0.0 < drift < 0.05

    assert "checked 40 entries" in _pad("sft", "manifests/sft-demo.yaml", "--check")
