"""`pad pretrain` on the demo manifest through DeepSpeed on CPU: kill after a checkpoint, resume, and get
the same losses as an uninterrupted run; the export is LLaVA's mm_projector.bin."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from pad_pipeline.dataset.synthetic import random_field_build
from trainer.training import checkpoint

pytestmark = pytest.mark.integration
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = 10


def _start(out: str, data: str, resume: bool = False) -> subprocess.Popen:
    overrides = [f"data.path={data}", f"train.output_dir={out}", f"train.max_steps={STEPS}", "train.save_every=3",
                 "train.keep_checkpoints=10", "train.progress=false", "data.num_workers=1"]
    code = ("import sys; from trainer.training.driver import run_pretrain as run; "
            f"sys.exit(run('manifests/pretrain-demo.yaml', {overrides!r}, resume={resume}))")
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _losses(out: str) -> dict[int, tuple[float, float, float]]:
    with open(os.path.join(out, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
    return {r["step"]: (r["caption_loss"], r["patch_loss"], r["beta"]) for r in rows}


def _finish(proc: subprocess.Popen) -> None:
    output, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, output[-3000:]


def test_kill_resume_matches_uninterrupted_run(tmp_path):
    data = str(tmp_path / "pad")
    random_field_build(data, num_samples=48, shard_size=12)
    full_dir, crash_dir = str(tmp_path / "full"), str(tmp_path / "crash")

    full = _start(full_dir, data)
    crash = _start(crash_dir, data)
    deadline = time.time() + 180
    while checkpoint.latest_checkpoint(crash_dir) is None and crash.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    crash.send_signal(signal.SIGKILL)
    crash.communicate()
    assert crash.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    resumed_from = checkpoint.read_state(checkpoint.latest_checkpoint(crash_dir))["step"]
    assert 3 <= resumed_from < STEPS
    _finish(full)

    _finish(_start(crash_dir, data, resume=True))
    expected, got = _losses(full_dir), _losses(crash_dir)
    assert len(expected) == len(got) == STEPS
    for step in range(1, STEPS + 1):
        assert got[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-6), step
    assert expected[1][2] == 0.0 and expected[STEPS][2] == 5.0  # beta ramp over the run
    assert len({round(v[0], 6) for v in expected.values()}) > 1

    ref = torch.load(os.path.join(full_dir, "export", "mm_projector.bin"), weights_only=True)
    ours = torch.load(os.path.join(crash_dir, "export", "mm_projector.bin"), weights_only=True)
    assert sorted(ours) == ["model.mm_projector.0.bias", "model.mm_projector.0.weight",
                            "model.mm_projector.2.bias", "model.mm_projector.2.weight"]
    for k in ref:
        assert torch.allclose(ours[k], ref[k], atol=1e-6)


def test_fresh_run_refuses_a_folder_with_checkpoints_and_resume_needs_one(tmp_path):
    from pad_pipeline.core.errors import PadError
    from trainer.training.driver import run_pretrain as run

    os.makedirs(os.path.join(tmp_path, "checkpoints", "step-00000003"))
    with open(os.path.join(tmp_path, "checkpoints", "step-00000003", "trainer_state.json"), "w") as f:
        f.write("{}")
    with pytest.raises(PadError, match="pass --resume"):
        run(os.path.join(REPO, "manifests/pretrain-demo.yaml"), [f"train.output_dir={tmp_path}"])
    with pytest.raises(PadError, match="no complete checkpoint"):
        run(os.path.join(REPO, "manifests/pretrain-demo.yaml"), [f"train.output_dir={tmp_path / 'none'}"], resume=True)
