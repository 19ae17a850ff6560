"""The cluster path, for real: `ray start --head`, then `ray job submit -- pad annotate` on the demo."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from helpers import REPO, subprocess_env

from pad_pipeline.tools.status import build_status, verify_build


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head(tmp_path):
    bin_dir = Path(sys.executable).parent
    env = subprocess_env()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    # A throwaway loopback cluster: no token auth (a developer's ~/.ray token would otherwise be demanded).
    env["RAY_AUTH_MODE"] = "disabled"
    port, dash, client, agent = (_free_port() for _ in range(4))
    log = open(tmp_path / "ray-head.log", "w")
    short_tmp = tempfile.mkdtemp(prefix="rayj", dir="/tmp")  # unix socket paths must stay < 108 bytes
    head = subprocess.Popen(
        [str(bin_dir / "ray"), "start", "--head", "--block", "--num-cpus=2", f"--port={port}",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
         f"--ray-client-server-port={client}", f"--dashboard-agent-listen-port={agent}",
         "--disable-usage-stats", f"--temp-dir={short_tmp}"],
        env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    address = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline and head.poll() is None:
            probe = subprocess.run([str(bin_dir / "ray"), "job", "list", "--address", address],
                                   env=env, capture_output=True, text=True)
            if probe.returncode == 0:
                break
            time.sleep(1)
        else:
            pytest.fail("ray head did not come up: " + (tmp_path / "ray-head.log").read_text()[-2000:])
        yield address, env
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(short_tmp, ignore_errors=True)


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
