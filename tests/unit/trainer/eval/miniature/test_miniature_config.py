"""The miniature's config: the manifest loads, each run's stage config is composed, bad plans fail at load."""

from pathlib import Path

import pytest

from pad_pipeline.core.errors import ConfigError
from trainer.eval.miniature.config import Checkpoints, load_miniature_manifest, stage1_config, stage2_config

MANIFEST = Path(__file__).resolve().parents[5] / "manifests" / "reproduce-rec.yaml"


def test_the_manifest_composes_both_stages_per_seed():
    m = load_miniature_manifest(MANIFEST).miniature
    assert list(m.stage2.inits) == ["random", "caption-only", "patch-aligned"] and len(m.seeds) >= 3
    assert m.vision_tower is not None and m.vision_tower.positions == "sincos"
    seed = Checkpoints(vision="out/vision", llm="out/warmup")
    p = stage1_config(m, "patch-aligned", "out/s1", 7, "out/build", seed)
    assert (p.train.beta_max, p.train.seed, p.data.path, p.model.llm.checkpoint) == (5.0, 7, "out/build", "out/warmup")
    assert p.model.vision.checkpoint == "out/vision"
    assert stage1_config(m, "caption-only", "o", 7, "b", seed).train.beta_max == 0.0
    s = stage2_config(m, "caption-only", "out/s2", 7, "rec.json", "imgs", seed, "out/s1")
    assert (s.init.projector, s.train.seed, s.data.path, s.data.image_folder) == ("out/s1", 7, "rec.json", "imgs")
    assert s.data.template == "vicuna_v1" and s.data.image_aspect == "pad" and s.model.llm.checkpoint == "out/warmup"
    assert s.model.vision.checkpoint == "out/vision"
    assert stage2_config(m, "random", "o", 0, "r", "i", seed, None).init.projector is None


@pytest.mark.parametrize("override, field", [
    ("miniature.stage2.inits.bad=nope", "names no run of stage1.runs"),
    ("miniature.scenes.heldout.seed=0", "must differ"),
    ("miniature.stage1.common.train.global_batch_size=15", "global_batch_size"),
    ("miniature.model.vision.checkpoint=openai/clip-vit-large-patch14-336", "vision_tower"),
    ("miniature.vision_tower.positions=learned", "positions"),
])
def test_bad_plans_fail_when_the_manifest_loads(override, field):
    with pytest.raises(ConfigError, match=field):
        load_miniature_manifest(MANIFEST, [override])


def test_data_folder_is_named_by_the_scene_and_expression_settings(tmp_path):
    from trainer.eval.miniature.prepare import prepare_data

    small = ["miniature.scenes.train.num_scenes=4", "miniature.scenes.heldout.num_scenes=2"]
    first = prepare_data(load_miniature_manifest(MANIFEST, small).miniature, str(tmp_path))
    assert Path(first.build).parent.parent == tmp_path and Path(first.build).parent.name.startswith("data-")
    again = prepare_data(load_miniature_manifest(MANIFEST, small).miniature, str(tmp_path))
    assert again == first  # same settings: the same folder, reused
    # other expressions (same scenes) would rewrite rec-train.json under a finished stage-2 run: another folder
    other = prepare_data(load_miniature_manifest(MANIFEST, [*small, "miniature.expressions.train_per_image=1"])
                         .miniature, str(tmp_path))
    assert Path(other.build).parent != Path(first.build).parent and other.conversations != first.conversations
