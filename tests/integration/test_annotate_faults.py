"""Faults survived by `pad annotate` (real Ray, real tiny models): each test checks the invariant that
every input image ends exactly once, as a sample in a committed shard or as a named failure."""

import os
import signal
import subprocess
import threading
import time

import pytest
from helpers import assert_each_input_once, good_images, hooks_json, pad_command, subprocess_env, write_manifest

from pad_pipeline.annotate.config import load_annotate_config
from pad_pipeline.core.errors import PadError
from pad_pipeline.ray.driver import run_annotate


def test_actor_killed_mid_batch_build_completes(local_ray, tmp_path, monkeypatch):
    monkeypatch.setenv("PAD_TEST_HOOKS", hooks_json(kill_probability=0.1))
    names = good_images(tmp_path / "src", 24, seed=1)
    manifest = write_manifest(tmp_path / "m.yaml", tmp_path / "src", tmp_path / "out", shard_size=4,
                              batch_size=2, actor_restarts=50, shard_retries=5)
    summary = run_annotate(load_annotate_config(str(manifest)))
    assert summary.ok, summary.failed
    assert_each_input_once(tmp_path / "out", set(names))


def test_shard_workers_killed_mid_shard_are_replaced_and_the_shard_retried(local_ray, tmp_path, monkeypatch):
    import psutil

    monkeypatch.setenv("PAD_TEST_HOOKS", hooks_json(pause_before_commit_s=1.0))

    names = good_images(tmp_path / "src", 12, seed=6)
    out = tmp_path / "out"
    manifest = write_manifest(tmp_path / "m.yaml", tmp_path / "src", out, shard_size=2,
                              shard_retries=3)
    result = {}

    def build():
        try:
            result["summary"] = run_annotate(load_annotate_config(str(manifest)))
        except Exception as e:
            result["error"] = e

    thread = threading.Thread(target=build)
    thread.start()
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob("pad-*.tar")):
        time.sleep(0.1)
    killed = 0
    for proc in psutil.process_iter(["cmdline"]):  # every shard worker, one of them between tar and record
        if "ray::ShardWorker" in " ".join(proc.info["cmdline"] or []):
            proc.kill()
            killed += 1
    thread.join(timeout=240)
    assert killed and not thread.is_alive()
    assert result.get("summary") is not None and result["summary"].ok, result
    assert_each_input_once(out, set(names))


def test_sigkill_between_tar_and_record_rerun_is_byte_identical(local_ray, tmp_path):
    names = good_images(tmp_path / "src", 9, seed=2)
    clean = write_manifest(tmp_path / "clean.yaml", tmp_path / "src", tmp_path / "clean", shard_size=3)
    assert run_annotate(load_annotate_config(str(clean))).ok

    manifest = write_manifest(tmp_path / "m.yaml", tmp_path / "src", tmp_path / "out", shard_size=3)
    out = tmp_path / "out"
    slow = {**subprocess_env(), "PAD_TEST_HOOKS": hooks_json(pause_before_commit_s=30)}
    proc = subprocess.Popen(pad_command("annotate", str(manifest)), env=slow, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            tars = {p.stem for p in out.glob("pad-*.tar")}
            if tars:
                break
            time.sleep(0.2)
        assert tars, "no shard was written in time"
        time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    uncommitted = [t for t in tars if not (out / f"{t}.json").exists()]
    assert uncommitted, "the kill did not land between a tar and its record"
    again = run_annotate(load_annotate_config(str(manifest)))
    assert again.ok and set(again.committed) >= {int(t[-6:]) for t in uncommitted}
    for i in range(3):
        name = f"pad-{i:06d}.tar"
        assert (out / name).read_bytes() == (tmp_path / "clean" / name).read_bytes(), name
    assert_each_input_once(out, set(names))


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_output_disk_fails_fast_and_commits_nothing_partial(local_ray, tmp_path, tiny_disk):
    names = good_images(tmp_path / "src", 40, seed=3)
    out = tiny_disk / "out"
    manifest = write_manifest(tmp_path / "m.yaml", tmp_path / "src", out, shard_size=2)
    t0 = time.time()
    with pytest.raises(PadError, match="full"):
        run_annotate(load_annotate_config(str(manifest)))
    assert time.time() - t0 < 120
    from pad_pipeline.tools.status import verify_build

    report = verify_build(str(out))
    assert report.problems == []  # every shard with a record is complete and whole
    for record_path in out.glob("pad-*[0-9].json"):
        assert (out / record_path.name.replace(".json", ".tar")).exists()
    # Space freed (the same filesystem, grown in place): the rerun resumes and completes.
    subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_disk)], check=True)
    assert run_annotate(load_annotate_config(str(manifest))).ok
    assert_each_input_once(out, set(names))


def test_hung_stage_trips_the_watchdog(local_ray, tmp_path, monkeypatch):
    monkeypatch.setenv("PAD_TEST_HOOKS", hooks_json(pause_before_commit_s=60))
    names = good_images(tmp_path / "src", 3, seed=4)
    manifest = write_manifest(tmp_path / "m.yaml", tmp_path / "src", tmp_path / "out", shard_size=3,
                              stall_timeout_s=3)
    t0 = time.time()
    with pytest.raises(PadError, match="no progress"):
        run_annotate(load_annotate_config(str(manifest)))
    assert time.time() - t0 < 45
    monkeypatch.delenv("PAD_TEST_HOOKS")  # the stage no longer hangs: the rerun completes
    assert run_annotate(load_annotate_config(str(manifest))).ok
    assert_each_input_once(tmp_path / "out", set(names))


def test_node_removed_mid_run_then_rerun_completes(tmp_path):
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    worker = cluster.add_node(num_cpus=2)
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        names = good_images(tmp_path / "src", 16, seed=5)
        # One actor, so the head alone can hold it and a shard task once the worker node is gone.
        manifest = write_manifest(tmp_path / "m.yaml", tmp_path / "src", tmp_path / "out", shard_size=2,
                                  shard_retries=3, actor_restarts=5, stall_timeout_s=60)
        cfg = load_annotate_config(str(manifest))
        result = {}

        def build():
            try:
                result["summary"] = run_annotate(cfg)
            except Exception as e:  # a clean failure is allowed; the rerun must then complete
                result["error"] = e

        thread = threading.Thread(target=build)
        thread.start()
        deadline = time.time() + 120
        while time.time() < deadline and not list((tmp_path / "out").glob("pad-*[0-9].json")):
            time.sleep(0.2)
        cluster.remove_node(worker)
        thread.join(timeout=240)
        assert not thread.is_alive(), "the build neither finished nor failed after the node was removed"
        assert "summary" in result or isinstance(result["error"], PadError), result
        rerun = run_annotate(cfg)
        assert rerun.ok
        assert_each_input_once(tmp_path / "out", set(names))
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_a_runner_that_cannot_fit_the_local_instance_is_refused_with_the_fields_to_change(local_ray, tmp_path):
    good_images(tmp_path / "src", 2, seed=9)
    manifest = write_manifest(tmp_path / "m.yaml", tmp_path / "src", tmp_path / "out", annotators=2,
                              cpus_per_annotator=1.0, cpus_per_shard_worker=0.5)
    with pytest.raises(PadError, match=r"need 2\.5 CPUs.*runner\.annotators"):
        run_annotate(load_annotate_config(str(manifest)))
    assert not list((tmp_path / "out").glob("pad-*.tar"))
