"""`pad annotate` with the faster model choices (`sam2`, `mm_grounding_dino`) through the real CLI and Ray,
then `pad verify` on the result."""

import json
import subprocess

from helpers import assert_each_input_once, good_images, pad_command, subprocess_env, write_manifest

from pad_pipeline.dataset.reader import committed_records, iter_committed_samples


def test_sam2_and_mm_grounding_dino_build_verifies(tmp_path):
    names = good_images(tmp_path / "src", 5, seed=4)
    out = tmp_path / "out"
    manifest = write_manifest(tmp_path / "m.yaml", tmp_path / "src", out, shard_size=3)
    sets = ["models.segmenter.kind=sam2", "models.detector.kind=mm_grounding_dino", "runner.num_cpus=2"]
    annotate = subprocess.run(pad_command("annotate", str(manifest), *[a for s in sets for a in ("--set", s)]),
                              env=subprocess_env(), capture_output=True, text=True, timeout=240)
    assert annotate.returncode == 0, annotate.stderr[-2000:]
    verify = subprocess.run(pad_command("verify", str(out)), env=subprocess_env(), capture_output=True, text=True,
                            timeout=120)
    assert verify.returncode == 0, verify.stdout[-2000:] + verify.stderr[-2000:]
    assert_each_input_once(out, set(names))
    provenance = {json.dumps(r.extra["models"], sort_keys=True) for r in committed_records(str(out)).values()}
    assert len(provenance) == 1
    models = json.loads(provenance.pop())
    assert models["segment"]["name"] == "sam2" and models["detect"]["name"] == "mm_grounding_dino"
    labels = [label for s in iter_committed_samples(str(out)) for label in s.record.labels]
    assert labels and all(label.rle_mask and label.area > 0 for label in labels)
