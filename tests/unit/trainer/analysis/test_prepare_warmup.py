"""`warmup_llm:` of an analysis manifest: the warmed-up LLM folder becomes every run's model.llm.checkpoint."""

import os

from helpers import ANALYZE_BASE, write_analyze_manifest

from trainer.analysis.config import load_analyze_config, pretrain_config
from trainer.analysis.prepare import warm_up_llm_first
from trainer.config.sections import LlmConfig
from trainer.models.loading import load_llm


def test_warm_up_first_points_the_model_and_the_runs_at_the_warmed_up_llm(tmp_path, capsys):
    manifest = {**ANALYZE_BASE, "output_dir": str(tmp_path / "out"),
                "synthetic": {"train": {"out": str(tmp_path / "shapes"), "num_scenes": 6}},
                "warmup_llm": {"synthetic": "train", "steps": 2, "batch_size": 2, "hidden_size": 32, "layers": 1}}
    cfg = load_analyze_config(write_analyze_manifest(tmp_path, manifest))
    warmed = warm_up_llm_first(cfg)
    folder = warmed.model.llm.checkpoint
    assert os.path.dirname(folder) == str(tmp_path / "out") and os.path.basename(folder).startswith("warmup-llm-")
    assert cfg.model.llm.checkpoint == "tiny-random"
    assert pretrain_config(warmed, "pa").model.llm.checkpoint == folder
    assert load_llm(LlmConfig(checkpoint=folder))[0].config.hidden_size == 32
    capsys.readouterr()
    assert warm_up_llm_first(cfg) == warmed and "reusing" in capsys.readouterr().err
    for other in ({"steps": 3}, {"expressions_per_image": 1}):  # other settings or corpus: another LLM, never the old
        changed = {**manifest, "warmup_llm": {**manifest["warmup_llm"], **other}}
        again = warm_up_llm_first(load_analyze_config(write_analyze_manifest(tmp_path, changed)))
        assert again.model.llm.checkpoint != folder and "reusing" not in capsys.readouterr().err
    no_warmup = load_analyze_config(write_analyze_manifest(tmp_path, ANALYZE_BASE))
    assert warm_up_llm_first(no_warmup) is no_warmup
