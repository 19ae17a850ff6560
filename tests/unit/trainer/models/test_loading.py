"""The one inference builder: the run's model section without gradient checkpointing, the section untouched."""

from trainer.config.sections import ModelConfig
from trainer.models.loading import inference_vlm


def test_inference_vlm_turns_gradient_checkpointing_off_on_a_copy():
    cfg = ModelConfig.model_validate({"vision": {"checkpoint": "tiny-random"},
                                      "llm": {"checkpoint": "tiny-random", "gradient_checkpointing": True}})
    vlm = inference_vlm(cfg, seed=1)
    assert cfg.llm.gradient_checkpointing is True
    assert not vlm.model.llm.is_gradient_checkpointing
