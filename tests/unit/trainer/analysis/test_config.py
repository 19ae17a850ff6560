"""The `pad analyze` manifest schema: runs become pad pretrain configs; bad fields fail in one line."""

import pytest
from helpers import ANALYZE_BASE, write_analyze_manifest

from pad_pipeline.core.errors import ConfigError
from trainer.analysis.config import load_analyze_config, pretrain_config
from trainer.analysis.metrics import ThresholdRule


def test_manifest_builds_pretrain_configs_of_its_runs(tmp_path):
    cfg = load_analyze_config(write_analyze_manifest(tmp_path, ANALYZE_BASE), ["train.runs.pa.beta_max=2"])
    pc = pretrain_config(cfg, "pa")
    assert pc.train.beta_max == 2 and pc.train.lr == 0.01 and pc.train.max_steps == 3
    assert pc.train.output_dir.endswith("OUT/train/pa") and pc.data.path == "TRAIN"
    assert pc.model == cfg.model
    assert cfg.metrics.threshold.to_rule() == ThresholdRule("mean_std", 1.0)


@pytest.mark.parametrize("change,message", [
    ({"projectors": {"x": {"source": "train:nope"}}}, "names no run"),
    ({"warmup_llm": {"synthetic": "nope"}}, "warmup_llm.synthetic: 'nope' names no synthetic build"),
    ({"projectors": {"a b": {}}}, "name folders"),
    ({"train": {"runs": {"pa": {"beta_max": 1, "set": {"train.lrr": 1}}}}}, "lrr"),
    ({"metrics": {"threshold": {"rule": "otsu"}}}, r"metrics\.threshold\.rule': 'otsu' is not a known threshold "
                                                   r"rule; valid: mean_std, relative, absolute$"),
    ({"projectors": {"random": {"kind": "mlp3"}}}, r"projectors\.random\.kind': 'mlp3' is not a known "
                                                   r"projector; valid: linear, mlp2x_gelu, c_abstractor$"),
    ({"model": {"projector": {"kind": "mlp3"}}}, r"model\.projector\.kind': 'mlp3' is not a known projector"),
    ({"train": {"runs": {"pa": {"beta_max": 1, "set": {"train.beta_max.x": 1}}}}},
     r"train\.beta_max is not a mapping$"),
])
def test_bad_manifests_fail_with_one_line_naming_the_field(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_analyze_config(write_analyze_manifest(tmp_path, {**ANALYZE_BASE, **change}))
    assert "\n" not in str(err.value) and "m.yaml" in str(err.value)
