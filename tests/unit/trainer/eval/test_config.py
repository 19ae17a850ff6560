"""The eval manifest is checked when it loads: one line naming the field, before any model loads."""

import pytest
import yaml

from pad_pipeline.core.errors import ConfigError
from trainer.eval.config import load_eval_config
from trainer.eval.predictions import reusable_answers, write_predictions


def _load(tmp_path, manifest, *overrides):
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return load_eval_config(path, overrides)


def test_valid_manifest_and_dotted_override(tmp_path):
    cfg = _load(tmp_path, {"models": {"a": {"stage2": "runs/x"}},
                           "rec": {"splits": {"refcoco_val": {"refs": "r.p", "instances": "i.json", "images": "im",
                                                              "split": "val"}}}},
                "rec.splits.refcoco_val.limit=10", "generation.gpus=2")
    assert cfg.rec is not None and cfg.rec.splits["refcoco_val"].limit == 10 and cfg.rec.frame == "image"
    assert cfg.generation.gpus == 2


@pytest.mark.parametrize(("manifest", "message"), [
    ({"models": {"a": {"stage2": "x"}}}, "nothing to evaluate"),
    ({"models": {"a": {"stage1": "random"}}, "captions": {"annotations": "c.json", "images": "im"}},
     "stage1 random needs `model`"),
    ({"models": {"a": {"stage1": "x"}}, "rec": {"splits": {"v": {"refs": "r.p"}}}}, "format refer needs"),
    ({"models": {"a": {"stage1": "x"}}, "rec": {"splits": {"v": {"format": "parquet", "path": "p"}}}},
     "rec evaluates stage2 models"),
    ({"models": {"a b": {"stage2": "x"}}, "lmms_eval": {}}, "must be letters"),
    ({"models": {"a": {"stage2": "x"}}, "lmms_eval": {"taks": ["gqa"]}}, "taks"),
])
def test_bad_manifests_name_the_problem(tmp_path, manifest, message):
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, manifest)


def test_answers_are_reused_only_for_the_same_model_settings_and_samples(tmp_path):
    path = str(tmp_path / "p.jsonl")
    write_predictions(path, [{"id": "a", "answer": "x"}, {"id": "b", "answer": "y"}], {"model": "m", "n": 1})
    assert reusable_answers(path, {"model": "m", "n": 1}, ["a", "b"]) == ["x", "y"]
    assert reusable_answers(path, {"model": "m", "n": 2}, ["a", "b"]) is None
    assert reusable_answers(path, {"model": "m", "n": 1}, ["a", "c"]) is None
    assert reusable_answers(str(tmp_path / "none.jsonl"), {"model": "m", "n": 1}, ["a"]) is None
