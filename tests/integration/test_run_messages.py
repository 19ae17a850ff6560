"""What `pad annotate` says (issue 12, items 2 and 7), on real local Ray with the tiny-random models:
model errors before the job in one line, an actor-only error in one line without native dumps, a dead
annotator named with how it died, annotators the cluster cannot place named with the resources, no
token-auth warning on a local instance (token auth still on), and a clean exit on Ctrl-C."""

import io
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
from helpers import assert_each_input_once, good_images, hooks_json, pad_command, subprocess_env, write_manifest

from pad_pipeline.annotate.config import load_annotate_config
from pad_pipeline.core.errors import PadError
from pad_pipeline.ray.driver import run_annotate

NATIVE_DUMPS = ("SIGABRT", "SIGSEGV", "Stack trace", "Fatal Python error", "Traceback", "logging.cc")


@pytest.fixture(scope="module")
def ray_one_gpu():
    import ray

    ray.shutdown()
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _local_env() -> dict[str, str]:
    """The environment of a user's shell: no Ray mode or address inherited from this test process."""
    env = subprocess_env()
    for name in ("RAY_AUTH_MODE", "RAY_ADDRESS"):
        env.pop(name, None)
    return env


def test_paper_preset_without_its_files_fails_before_planning_in_one_line(tmp_path):
    good_images(tmp_path / "src", 2)
    manifest = write_manifest(tmp_path / "m.yaml", tmp_path / "src", tmp_path / "out")
    t0 = time.time()
    proc = subprocess.run(pad_command("annotate", str(manifest), "--set", "models.preset=paper"), cwd=tmp_path,
                          env=_local_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "pad: error: field 'models.tagger.tag_list': checkpoints/ram_tag_list.txt does not exist; download it "
        "from https://github.com/xinyu1205/recognize-anything/tree/main/ram/data or set the field"]
    assert not (tmp_path / "out").exists() and time.time() - t0 < 20  # nothing planned, no Ray started


def test_corrupt_checkpoint_is_one_line_then_the_fixed_manifest_replans(ray_one_gpu, tmp_path):
    names = good_images(tmp_path / "src", 4, seed=3)
    out = tmp_path / "out"
    manifest = write_manifest(tmp_path / "m.yaml", tmp_path / "src", out, shard_size=2, num_cpus=2)
    (tmp_path / "ram_plus.pth").write_bytes(b"not a checkpoint")
    (tmp_path / "tags.txt").write_text("cat\ndog\n")
    # The CLI in a fresh process, as a user runs it; afterwards it prints the auth mode Ray was started in.
    script = ("import sys; from pad_pipeline.cli import main; rc = main(sys.argv[1:]); "
              "from ray._raylet import AuthenticationMode, get_authentication_mode; "
              "print('token auth:', get_authentication_mode() == AuthenticationMode.TOKEN, file=sys.stderr); "
              "sys.exit(rc)")
    args = ["annotate", str(manifest), "--set", "models.tagger.kind=ram_plus",
            "--set", f"models.tagger.checkpoint={tmp_path / 'ram_plus.pth'}",
            "--set", f"models.tagger.tag_list={tmp_path / 'tags.txt'}"]
    proc = subprocess.run([sys.executable, "-c", script, *args], env=_local_env(), capture_output=True, text=True,
                          timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert lines[-1] == "token auth: True"
    assert lines[-2].startswith("pad: error: field 'models.tagger.checkpoint': ") and "ram_plus.pth" in lines[-2]
    assert not [ln for ln in lines if any(d in ln for d in NATIVE_DUMPS)], proc.stderr
    assert "Token authentication" not in proc.stderr
    assert [ln for ln in lines if ln.startswith("pad: error")] == [lines[-2]]

    stream = io.StringIO()
    t0 = time.time()
    summary = run_annotate(load_annotate_config(str(manifest)), stream=stream)  # the fixed manifest
    elapsed = time.time() - t0
    assert summary.ok and sorted(summary.committed) == [0, 1]
    assert_each_input_once(out, set(names))
    said = stream.getvalue()
    steps = ["[pad] planning", "to do", "placed", "models loaded", "shards 2/2 committed"]
    assert all(s in said for s in steps), said
    assert [said.index(s) for s in steps] == sorted(said.index(s) for s in steps)
    assert summary.seconds >= elapsed - 0.5  # "done in" covers planning and model loading


def test_an_annotator_that_keeps_crashing_is_named_with_its_last_error(ray_one_gpu, tmp_path, monkeypatch):
    monkeypatch.setenv("PAD_TEST_HOOKS", hooks_json(kill_probability=1.0))
    good_images(tmp_path / "src", 2, seed=4)
    manifest = write_manifest(tmp_path / "m.yaml", tmp_path / "src", tmp_path / "out", shard_size=2,
                              actor_restarts=1, shard_retries=1)
    with pytest.raises(PadError) as err:
        run_annotate(load_annotate_config(str(manifest)), stream=io.StringIO())
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("annotator actor 0 of 1 (AnnotatorWorker pid ")
    assert "died 2 time(s) (runner.actor_restarts=1); last error: SYSTEM_ERROR: " in message
    assert "not done: [0]" in message and "rerun to resume" in message


def _run_in_thread(fn):
    result = {}

    def target():
        try:
            result["value"] = fn()
        except Exception as e:
            result["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result


def test_annotators_the_cluster_cannot_place_are_named_with_the_resources(ray_one_gpu, tmp_path):
    good_images(tmp_path / "src", 2, seed=5)
    manifest = write_manifest(tmp_path / "m.yaml", tmp_path / "src", tmp_path / "out", shard_size=2, annotators=2,
                              cpus_per_annotator=0.25, placement_timeout_s=3)
    cfg = load_annotate_config(str(manifest))
    address = ray_one_gpu.get_runtime_context().gcs_address  # joined, as on a cluster: no local pre-check
    t0 = time.time()
    thread, result = _run_in_thread(lambda: run_annotate(cfg, address=address, stream=io.StringIO()))
    thread.join(timeout=60)
    assert not thread.is_alive(), "still waiting for an annotator the cluster cannot place"
    assert isinstance(result.get("error"), PadError), result
    assert str(result["error"]).startswith(
        "runner: 2 annotator(s) x 1 GPU + 0.25 CPU requested, 1 placed after 3s; the cluster has 0 GPU / ")
    assert "(1 GPU / 2 CPU in total); lower runner.annotators" in str(result["error"])
    assert time.time() - t0 < 45
    deadline = time.time() + 20  # the placed annotator was stopped too: its GPU comes back
    while ray_one_gpu.available_resources().get("GPU") != 1 and time.time() < deadline:
        time.sleep(0.2)
    assert ray_one_gpu.available_resources().get("GPU") == 1
    with pytest.raises(PadError, match=r"^runner: 2 annotator\(s\) x 1 GPU \+ 0\.25 CPU requested; the cluster "
                                       r"has 1 GPU .*runner\.num_gpus"):
        run_annotate(cfg, stream=io.StringIO())  # the local instance: refused before any actor starts


def _read_lines(stream, lines: list[str]) -> None:
    for line in stream:
        lines.append(line)


def test_ctrl_c_while_ray_starts_and_models_load_exits_cleanly(tmp_path):
    good_images(tmp_path / "src", 2, seed=6)
    manifest = write_manifest(tmp_path / "m.yaml", tmp_path / "src", tmp_path / "out", shard_size=2, num_cpus=2)
    env = {**_local_env(), "PAD_TEST_HOOKS": hooks_json(pause_in_model_load_s=60)}
    proc = subprocess.Popen(pad_command("annotate", str(manifest)), env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=_read_lines, args=(proc.stderr, lines), daemon=True)
    reader.start()
    deadline = time.time() + 90
    while time.time() < deadline and not any("Started a local Ray instance" in ln for ln in lines):
        time.sleep(0.05)
    # Ray's core worker is still connecting here on a busy machine (the segfault window), or the models load.
    time.sleep(0.5)
    ray_processes = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    rc = proc.wait(timeout=90)
    reader.join(timeout=10)
    said = "".join(lines)
    assert rc == 130, said
    assert said.strip().splitlines()[-1] == "pad: interrupted; rerun the same command to resume"
    assert not any(d in said for d in NATIVE_DUMPS), said
    _, alive = psutil.wait_procs(ray_processes, timeout=20)
    assert not alive, [p.cmdline() for p in alive]
