"""The annotation manifest: presets, kinds checked at load, renamed runner fields, and a typo's fast exit."""

import subprocess
import sys
import time

import pytest
import yaml
from helpers import REPO, subprocess_env

from pad_pipeline.annotate.config import RENAMED_RUNNER_FIELDS, load_annotate_config
from pad_pipeline.annotate.models.registry import MODEL_PRESETS
from pad_pipeline.core.errors import ConfigError


def _manifest(tmp_path, **sections) -> str:
    data = {"source": {"kind": "image_dir", "path": str(tmp_path / "src")},
            "output": {"path": str(tmp_path / "out")}, "models": {"preset": "tiny-random"}, **sections}
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_checked_in_manifests_load_with_their_presets():
    demo = load_annotate_config("manifests/demo.yaml")
    assert demo.runner.annotators == 1 and demo.models.tagger.threshold == 0.0
    assert demo.models.detector.box_threshold == 0.0 and demo.models.dtype == "float32"
    paper = load_annotate_config("manifests/pad-llava558k.yaml")
    assert (paper.models.tagger.kind, paper.models.detector.checkpoint, paper.models.segmenter.checkpoint) == \
        ("ram_plus", "IDEA-Research/grounding-dino-tiny", "facebook/sam-vit-huge")
    assert (paper.models.detector.box_threshold, paper.models.detector.text_threshold) == (0.25, 0.2)
    assert (paper.runner.gpus_per_annotator, paper.runner.cpus_per_annotator,
            paper.runner.shard_workers_per_annotator) == (1, 2, 3)


def test_manifest_and_overrides_win_over_the_preset(tmp_path):
    path = _manifest(tmp_path, models={"preset": "paper", "detector": {"box_threshold": 0.3}})
    cfg = load_annotate_config(path, ["models.nms.iou_threshold=0.7"])
    assert cfg.models.detector.box_threshold == 0.3 and cfg.models.nms.iou_threshold == 0.7
    assert cfg.models.detector.checkpoint == MODEL_PRESETS["paper"]["detector"]["checkpoint"]
    switched = load_annotate_config(path, ["models.preset=tiny-random"])
    assert switched.models.tagger.kind == "clip" and switched.models.detector.box_threshold == 0.3


def test_an_unknown_preset_lists_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"m\.yaml: field 'models\.preset': unknown preset 'papr'; "
                                          r"valid: fast, paper, tiny-random$"):
        load_annotate_config(_manifest(tmp_path, models={"preset": "papr"}))


@pytest.mark.parametrize("override, field, valid", [
    ("source.kind=image_folder", "source.kind", "llava_json, image_dir, webdataset"),
    ("models.tagger.kind=ram_pluss", "models.tagger.kind", "clip, ram, ram_plus"),
    ("models.detector.kind=grounding_dinoo", "models.detector.kind", "grounding_dino, mm_grounding_dino"),
    ("models.segmenter.kind=sam3", "models.segmenter.kind", "sam, sam2"),
])
def test_every_kind_is_checked_against_its_registry_when_the_manifest_loads(tmp_path, override, field, valid):
    typo = override.split("=")[1]
    with pytest.raises(ConfigError) as err:
        load_annotate_config(_manifest(tmp_path), [override])
    assert str(err.value) == f"{tmp_path / 'm.yaml'}: field '{field}': {typo!r} is not a known " \
                             f"{field.split('.')[-2]}; valid: {valid}"


@pytest.mark.parametrize("old, new", sorted(RENAMED_RUNNER_FIELDS.items()))
def test_an_old_runner_field_names_its_new_name(tmp_path, old, new):
    expected = f"{tmp_path / 'm.yaml'}: field 'runner.{old}' was renamed to 'runner.{new}'"
    with pytest.raises(ConfigError) as in_manifest:
        load_annotate_config(_manifest(tmp_path, runner={old: 1}))
    with pytest.raises(ConfigError) as in_override:
        load_annotate_config(_manifest(tmp_path), [f"runner.{old}=1"])
    assert str(in_manifest.value) == str(in_override.value) == expected
    assert getattr(load_annotate_config(_manifest(tmp_path, runner={new: 1})).runner, new) == 1


def test_a_kind_typo_exits_2_in_one_line_fast_before_plan_or_ray(tmp_path):
    path = _manifest(tmp_path, models={"preset": "tiny-random", "detector": {"kind": "grounding_dinoo"}})
    # Run `pad annotate` in a fresh interpreter, as a user would, and report what the check imported.
    code = ("import sys\nfrom pad_pipeline.cli import main\n"
            f"rc = main(['annotate', {path!r}])\n"
            "print(sorted(m for m in ('torch', 'ray') if m in sys.modules))\nsys.exit(rc)\n")
    t0 = time.monotonic()
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=subprocess_env(), capture_output=True,
                         text=True, timeout=60)
    seconds = time.monotonic() - t0
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines() == ["pad: error: " + path + ": field 'models.detector.kind': "
                                       "'grounding_dinoo' is not a known detector; valid: grounding_dino, "
                                       "mm_grounding_dino"]
    assert run.stdout.strip() == "[]"  # neither torch nor Ray was needed to refuse it
    assert seconds < 2.0, f"took {seconds:.2f}s"
    assert not (tmp_path / "out").exists()  # no plan.json, not even the folder


def test_the_fast_preset_uses_the_faster_model_kinds_and_keeps_the_paper_thresholds(tmp_path):
    fast = load_annotate_config(_manifest(tmp_path, models={"preset": "fast"}))
    paper = load_annotate_config(_manifest(tmp_path, models={"preset": "paper"}))
    assert (fast.models.detector.kind, fast.models.segmenter.kind) == ("mm_grounding_dino", "sam2")
    assert fast.models.segmenter.checkpoint.startswith("facebook/sam2.1-hiera-")
    assert fast.models.tagger == paper.models.tagger and fast.models.nms == paper.models.nms
    assert (fast.models.detector.box_threshold, fast.models.detector.text_threshold) == (0.25, 0.2)
    assert not fast.models.compile and not paper.models.compile
