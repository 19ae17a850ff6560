"""The cluster path: the same demo run under Ray Train (TorchTrainer, one CPU worker running DeepSpeed)
gives the same losses as the local single-process path."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from pad_pipeline.dataset.synthetic import random_field_build

pytestmark = pytest.mark.integration
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(out: str, data: str, mode: str) -> list[dict]:
    overrides = [f"data.path={data}", f"train.output_dir={out}", "train.max_steps=3", "train.save_every=2",
                 "train.progress=false", "train.tensorboard=false", "data.num_workers=0",
                 f"launch.mode={mode}", "launch.cpus_per_worker=1"]
    code = ("import sys; from trainer.training.driver import run_pretrain as run; "
            f"sys.exit(run('manifests/pretrain-demo.yaml', {overrides!r}))")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a local Ray instance
    env.update(PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    if mode == "ray":
        # The file `ray start` leaves for address=None to join, naming a dead cluster: with no address given,
        # the trainer must start its own instance, not join (or fail on) whatever cluster the machine has.
        ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # unix socket paths stay short
        os.makedirs(os.path.join(ray_tmp, "ray"))
        with open(os.path.join(ray_tmp, "ray", "ray_current_cluster"), "w") as f:
            f.write("127.0.0.1:9")
        env["RAY_TMPDIR"] = ray_tmp
    try:
        proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=300)
    finally:
        if mode == "ray":
            shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_ray_train_path_matches_local_path(tmp_path):
    data = str(tmp_path / "pad")
    random_field_build(data, num_samples=24, shard_size=8)
    local = _run(str(tmp_path / "local"), data, "local")
    ray_rows = _run(str(tmp_path / "ray"), data, "ray")
    assert [r["step"] for r in ray_rows] == [1, 2, 3]
    for a, b in zip(local, ray_rows, strict=True):
        assert b["caption_loss"] == pytest.approx(a["caption_loss"], rel=1e-5)
        assert b["patch_loss"] == pytest.approx(a["patch_loss"], rel=1e-5)
    assert os.path.exists(tmp_path / "ray" / "export" / "mm_projector.bin")
    assert os.path.exists(tmp_path / "ray" / "checkpoints" / "step-00000003" / "trainer_state.json")
