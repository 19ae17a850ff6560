"""The README's `ray job submit` commands, run exactly as written (runtime env included) against a real local head.

README.md shows two fenced blocks, each right under a marker line: `<!-- ray-jobs: local ... -->` (the demo
manifests, outputs under /tmp/pad/: a local try) and `<!-- ray-jobs: cluster ... -->` (the paper's manifests
and shared paths). This file reads both from README.md, so the README and what is tested cannot drift apart.
The local block runs here as written with two substitutions only: RAY_ADDRESS names a fresh head on free
ports, and /tmp/pad/ becomes the test's tmp_path. The cluster block must be the same commands, differing only
in manifests, paths and the local try's smoke-size settings. A new README line (e.g. `pad sft`) is covered as
soon as it is added to both blocks."""

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from helpers import REPO

from pad_pipeline.tools.status import build_status, verify_build

pytestmark = pytest.mark.integration

README = REPO / "README.md"
LOCAL_ROOT = "/tmp/pad/"
LOCAL_ONLY_SETS = {"train.max_steps"}   # smoke-size settings the local try may add to a cluster command
CLI = ["python", "-m", "pad_pipeline.cli"]
VALUED = {"--out", "--set", "--shards", "--address"}


@dataclass
class Job:
    tokens: list[str]
    prefix: list[str]          # ray job submit ... -- python -m pad_pipeline.cli SUBCOMMAND
    manifest: str
    options: dict[str, str] = field(default_factory=dict)   # "--out" -> V, "--flag" -> "", "k.sub" -> V (--set)

    @property
    def writes(self) -> list[str]:
        return [v for k, v in self.options.items() if k == "--out" or k.endswith("output_dir")]

    @property
    def reads(self) -> list[str]:
        return [v for k, v in self.options.items() if v not in self.writes and ("://" in v or v.startswith("/"))]


def readme_block(which: str) -> list[Job]:
    """The commands of the README block under `<!-- ray-jobs: WHICH ... -->` (`\\` continuations joined)."""
    text = README.read_text()
    marker = f"<!-- ray-jobs: {which}"
    assert marker in text, f"README.md has no block under a '{marker} ...' line (see /tmp/readme_cluster.md)"
    after = text[text.index(marker):].split("\n", 1)[1]
    assert after.startswith("```bash\n"), f"README.md: the '{marker}' line must be followed by a ```bash block"
    body = after[len("```bash\n"):].split("```", 1)[0].replace("\\\n", " ")
    return [parse_job(shlex.split(line)) for line in body.splitlines() if line.strip()]


def parse_job(tokens: list[str]) -> Job:
    assert tokens[:3] == ["ray", "job", "submit"] and "--" in tokens, f"not a ray job submit command: {tokens}"
    cli = tokens[tokens.index("--") + 1:]
    assert cli[:3] == CLI, f"the entrypoint must be `{' '.join(CLI)} ...` (PAD need not be installed): {cli}"
    job = Job(tokens, tokens[:tokens.index("--") + 5], cli[4])
    rest = iter(cli[5:])
    for tok in rest:
        assert tok.startswith("--"), f"unexpected argument {tok!r} in {shlex.join(tokens)}"
        value = next(rest) if tok in VALUED else ""
        key, value = value.split("=", 1) if tok == "--set" else (tok, value)
        job.options[key] = value
    return job


def test_the_cluster_block_is_the_local_block_at_paper_scale():
    local, cluster = readme_block("local"), readme_block("cluster")
    assert [j.prefix for j in local] == [j.prefix for j in cluster], "the two blocks must run the same commands"
    for mine, theirs in zip(local, cluster, strict=True):
        assert (REPO / mine.manifest).is_file() and (REPO / theirs.manifest).is_file()
        extra = set(mine.options) - set(theirs.options)
        assert extra <= LOCAL_ONLY_SETS and set(theirs.options) <= set(mine.options), (mine.tokens, theirs.tokens)
        assert all(out.startswith(LOCAL_ROOT) for out in mine.writes), f"local outputs go under {LOCAL_ROOT}"
    for block in (local, cluster):
        written: list[str] = []
        for job in block:
            orphans = [r for r in job.reads if not any(r == w or r.startswith(w + "/") for w in written)]
            assert not orphans, f"{shlex.join(job.tokens)} reads {orphans}, which no earlier command writes"
            written += job.writes


def test_every_command_uses_the_one_runtime_env():
    for job in readme_block("local") + readme_block("cluster"):
        flags = job.tokens[:job.tokens.index("--")]
        assert flags[flags.index("--runtime-env") + 1] == "cluster/runtime_env.yaml"
        assert flags[flags.index("--working-dir") + 1] == "."


def test_the_rayjob_entrypoint_is_the_readme_cluster_annotate_command():
    spec = yaml.safe_load((REPO / "cluster" / "rayjob.yaml").read_text())["spec"]
    annotate = next(j for j in readme_block("cluster") if j.prefix[-1] == "annotate")
    assert shlex.split(spec["entrypoint"]) == annotate.tokens[annotate.tokens.index("--") + 1:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _head_env() -> dict[str, str]:
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS")}  # code: the working dir
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env.setdefault("HF_HUB_OFFLINE", "1")
    # A throwaway loopback cluster: no token auth (a developer's ~/.ray token would otherwise be demanded).
    env["RAY_AUTH_MODE"] = "disabled"
    return env


@pytest.fixture
def ray_head(tmp_path):
    env, ray = _head_env(), str(Path(sys.executable).parent / "ray")
    port, dash, client, agent = (_free_port() for _ in range(4))
    log = open(tmp_path / "ray-head.log", "w")
    short_tmp = tempfile.mkdtemp(prefix="rayj", dir="/tmp")  # unix socket paths must stay < 108 bytes
    head = subprocess.Popen(
        [ray, "start", "--head", "--block", "--num-cpus=2", f"--port={port}",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
         f"--ray-client-server-port={client}", f"--dashboard-agent-listen-port={agent}",
         "--disable-usage-stats", f"--temp-dir={short_tmp}"],
        env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
    env["RAY_ADDRESS"] = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline and head.poll() is None:
            if subprocess.run([ray, "job", "list"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(1)
        else:
            pytest.fail("ray head did not come up: " + (tmp_path / "ray-head.log").read_text()[-2000:])
        yield env
    finally:
        _stop_jobs(env["RAY_ADDRESS"])
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(short_tmp, ignore_errors=True)


def _stop_jobs(address: str) -> None:
    """A job outlives its `ray job submit` client and the head (its own session): stop what still runs."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    try:
        client = JobSubmissionClient(address)
        running = [j.submission_id for j in client.list_jobs() if not j.status.is_terminal()]
        for job_id in running:
            client.stop_job(job_id)
        deadline = time.time() + 30
        while running and time.time() < deadline:
            running = [j for j in running if client.get_job_status(j) not in (JobStatus.STOPPED, JobStatus.FAILED,
                                                                              JobStatus.SUCCEEDED)]
            time.sleep(1)
    except (ConnectionError, RuntimeError):
        pass  # the head is already gone


def _check_outputs(job: Job) -> None:
    """What every PAD command promises to leave behind: a verified build for --out, a run for output_dir."""
    for key, value in job.options.items():
        out = Path(value)
        if key == "--out":
            status = build_status(value)
            assert status["states"] == {"committed": status["shards"]} and status["samples"] > 0, status
            assert verify_build(value).problems == []
        elif key.endswith("output_dir"):
            assert (out / "config.yaml").is_file() and (out / "metrics.jsonl").read_text().strip(), value
            exports = [p for p in out.glob("export*") if p.is_dir() and any(p.iterdir())]
            assert exports, f"{value}: no export folder"


def test_the_readme_local_commands_run_as_written(ray_head, tmp_path):
    jobs = readme_block("local")
    assert {j.prefix[-1] for j in jobs} >= {"annotate", "pretrain"}
    for job in jobs:
        tokens = [t.replace(LOCAL_ROOT, f"{tmp_path}/") for t in job.tokens]
        t0 = time.time()
        done = subprocess.run(tokens, cwd=REPO, env=ray_head, capture_output=True, text=True, timeout=420)
        tail = done.stdout[-3000:] + done.stderr[-3000:]
        assert done.returncode == 0 and "succeeded" in done.stdout.lower(), f"{shlex.join(tokens)}\n{tail}"
        print(f"{job.prefix[-1]}: {time.time() - t0:.1f} s")
        _check_outputs(parse_job(tokens))
