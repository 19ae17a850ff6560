"""A build that cannot lie (real Ray, real tiny models): two `pad annotate` processes on one OUT (one is
refused, the build stays consistent and verifies), shards of two plans in one build (verify names them,
a rerun rebuilds them byte-identical), and inputs outside the source's root counted in `pad status`."""

import json
import shutil
import subprocess
import time

import yaml
from helpers import REPO, assert_each_input_once, good_images, hooks_json, pad_command, subprocess_env, write_manifest

from pad_pipeline.annotate.config import load_annotate_config
from pad_pipeline.cli import main
from pad_pipeline.dataset.reader import committed_records, load_plan
from pad_pipeline.ray.driver import run_annotate


def test_a_second_run_on_the_same_out_is_refused_naming_the_holder(tmp_path):
    names = good_images(tmp_path / "src", 8, seed=3)
    out = tmp_path / "out"
    manifest = write_manifest(tmp_path / "m.yaml", tmp_path / "src", out, shard_size=2, num_cpus=2)
    slow = {**subprocess_env(), "PAD_TEST_HOOKS": hooks_json(pause_before_commit_s=0.5)}
    first = subprocess.Popen(pad_command("annotate", str(manifest)), cwd=REPO, env=slow,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "lease.json").exists() and first.poll() is None:
        time.sleep(0.05)
    second = subprocess.run(pad_command("annotate", str(manifest), "--set", "models.seed=7"), cwd=REPO,
                            env=subprocess_env(), capture_output=True, text=True, timeout=120)
    while time.time() < deadline and not (out / "plan.json").exists() and first.poll() is None:
        time.sleep(0.05)
    reading_while_held = main(["verify", str(out), "--allow-partial"])  # readers take no lease
    _, first_err = first.communicate(timeout=300)
    assert reading_while_held == 0
    assert first.returncode == 0, first_err[-2000:]
    err = second.stderr.strip().splitlines()
    assert second.returncode == 2 and len(err) == 1, second.stderr
    assert f"another `pad annotate` is writing this build (pid {first.pid} on host" in err[0]
    # The build is the first run's alone: its plan, its config, its records; no lease left behind.
    plan = load_plan(str(out))
    assert yaml.safe_load((out / "config.yaml").read_text())["models"]["seed"] == 0
    assert {r.config_hash for r in committed_records(str(out)).values()} == {plan.config_hash}
    assert len(committed_records(str(out))) == plan.num_shards == 4 and not (out / "lease.json").exists()
    assert_each_input_once(out, set(names))
    assert main(["verify", str(out)]) == 0


def _tars(out):
    return {p.name: p.read_bytes() for p in sorted(out.glob("pad-*.tar"))}


def test_a_shard_of_another_plan_is_named_by_verify_and_rebuilt_by_a_rerun(local_ray, tmp_path, capsys):
    good_images(tmp_path / "src", 6, seed=4)
    manifest = write_manifest(tmp_path / "m.yaml", tmp_path / "src", tmp_path / "a", shard_size=2)
    cfg = load_annotate_config(str(manifest))
    assert run_annotate(cfg).ok
    original = _tars(tmp_path / "a")
    assert run_annotate(load_annotate_config(str(manifest), ["models.seed=7"]), out=str(tmp_path / "b")).ok
    for name in ("pad-000001.tar", "pad-000001.parquet", "pad-000001.json"):  # another plan's shard, copied in
        shutil.copyfile(tmp_path / "b" / name, tmp_path / "a" / name)
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "a")]) == 1
    assert "damaged: pad-000001.json: it belongs to another plan" in capsys.readouterr().out
    assert sorted(committed_records(str(tmp_path / "a"))) == [0, 2]  # never read as data
    summary = run_annotate(cfg)
    assert summary.ok and sorted(summary.committed) == [1]
    assert _tars(tmp_path / "a") == original and main(["verify", str(tmp_path / "a")]) == 0


def test_inputs_outside_the_image_root_are_counted_in_status(local_ray, tmp_path, capsys):
    names = good_images(tmp_path / "images", 3, seed=5)
    good_images(tmp_path / "outside", 1, seed=6)
    entries = [{"id": n, "image": n, "conversations": [{"from": "gpt", "value": "c"}]} for n in names]
    entries += [{"id": "up", "image": "../outside/img_000.jpg"},
                {"id": "abs", "image": str(tmp_path / "outside" / "img_000.jpg")}]
    (tmp_path / "list.json").write_text(json.dumps(entries))
    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump({
        "source": {"kind": "llava_json", "path": str(tmp_path / "list.json"), "image_root": str(tmp_path / "images")},
        "output": {"path": str(tmp_path / "out"), "shard_size": 5}, "models": {"preset": "tiny-random"},
        "runner": {"annotators": 1, "batch_size": 4, "torch_threads": 1}}))
    assert run_annotate(load_annotate_config(str(manifest))).ok
    assert main(["status", str(tmp_path / "out")]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["failure_reasons"] == {"outside_root": 2} and status["samples"] == 3
    assert_each_input_once(tmp_path / "out", set(names) | {"../outside/img_000.jpg",
                                                          str(tmp_path / "outside" / "img_000.jpg")})
