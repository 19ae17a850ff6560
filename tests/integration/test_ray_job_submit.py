"""The cluster path, for real: `ray start --head`, then `ray job submit -- pad annotate` on the demo."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pad_pipeline.status import build_status, verify_build

from helpers import REPO, subprocess_env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head(tmp_path):
    bin_dir = Path(sys.executable).parent
    env = subprocess_env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    port, dash = _free_port(), _free_port()
    head = subprocess.Popen(
        [str(bin_dir / "ray"), "start", "--head", "--block", "--num-cpus=2", f"--port={port}",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
         "--disable-usage-stats", f"--temp-dir={tmp_path / 'ray'}"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            probe = subprocess.run([str(bin_dir / "ray"), "job", "list", "--address", address],
                                   env=env, capture_output=True, text=True)
            if probe.returncode == 0:
                break
            time.sleep(1)
        else:
            pytest.fail("ray head did not come up")
        yield address, env
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)


def test_ray_job_submit_builds_the_demo(ray_head, tmp_path):
    address, env = ray_head
    out = tmp_path / "demo"
    submit = subprocess.run(
        [str(Path(sys.executable).parent / "ray"), "job", "submit", "--address", address,
         "--working-dir", str(REPO), "--runtime-env-json", '{"excludes": [".venv", "out", ".git", "runs"]}',
         "--", "pad", "annotate", "manifests/demo.yaml", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=300)
    assert submit.returncode == 0, submit.stdout[-3000:] + submit.stderr[-3000:]
    assert "succeeded" in submit.stdout.lower()
    status = build_status(str(out))
    assert status["states"] == {"committed": 4} and status["samples"] == 12
    assert status["failure_reasons"] == {"empty_file": 1}
    assert verify_build(str(out)).problems == []
