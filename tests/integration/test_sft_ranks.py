"""ZeRO-3 with its state really partitioned: two ranks under Ray Train (gloo) give the losses and the trained
weights of one local rank; a crash before the last checkpoint's commit (its folder half-written, a torn
metrics line) and `--resume` on two ranks restore the partitioned state and repeat the same steps."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from trainer.training import checkpoint

pytestmark = pytest.mark.integration
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMON = ["init.projector=null", "train.max_steps=3", "train.save_every=2", "train.progress=false",
          "train.tensorboard=false", "export.formats=[]", "data.group_by_modality_length=false", "data.num_workers=0"]
TWO_RANKS = ["launch.mode=ray", "launch.num_workers=2", "launch.cpus_per_worker=1"]


def _sft(out: str, extra: list[str], resume: bool = False) -> None:
    code = ("import sys; from trainer.training.driver import run_sft as run; "
            f"sys.exit(run('manifests/sft-demo.yaml', {COMMON + extra + [f'train.output_dir={out}']!r}, "
            f"resume={resume}))")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=400)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


def _losses(out: str) -> list[float]:
    return [json.loads(line)["loss"] for line in open(os.path.join(out, "metrics.jsonl"))]


def _weights(out: str) -> dict[str, torch.Tensor]:
    final = os.path.join(out, "checkpoints", "step-00000003")
    files = {n: load_file(os.path.join(final, f"{n}.safetensors")) for n in ("llm", "projector")}
    return {f"{n}.{k}": v for n, state in files.items() for k, v in state.items()}


def test_two_zero3_ranks_match_one_and_resume_their_partitions(tmp_path):
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    _sft(one, [])
    _sft(two, TWO_RANKS)
    assert len(_losses(one)) == 3 and _losses(two) == pytest.approx(_losses(one), rel=1e-5)
    expected = _weights(one)
    got = _weights(two)
    assert sorted(got) == sorted(expected) and all(torch.allclose(got[k], expected[k], atol=1e-6) for k in got)
    shards = os.listdir(os.path.join(two, "checkpoints", "step-00000002", "deepspeed"))
    assert {"zero_pp_rank_0_mp_rank_00_optim_states.pt", "zero_pp_rank_1_mp_rank_00_optim_states.pt"} <= set(shards)

    # The run "dies" while writing step 3: a half-written checkpoint folder and a torn metrics line.
    final = os.path.join(two, "checkpoints", "step-00000003")
    shutil.move(final, final + ".partial")
    with open(os.path.join(two, "metrics.jsonl"), "a") as f:
        f.write('{"step": 4, "lo')
    assert checkpoint.read_state(checkpoint.latest_checkpoint(two))["step"] == 2
    _sft(two, TWO_RANKS, resume=True)
    assert _losses(two) == pytest.approx(_losses(one), rel=1e-5)
    got = _weights(two)
    assert all(torch.allclose(got[k], expected[k], atol=1e-6) for k in got)
