"""Evaluated models: a random stage-1 subject, placed in a dtype with its normalisation kept in float32;
run folders checked before anything loads."""

import pytest
import torch

from pad_pipeline.core.errors import PadError
from pad_pipeline.core.runtime import TINY_RANDOM
from trainer.config.sections import LlmConfig, ModelConfig, VisionConfig
from trainer.eval.config import ModelSpec
from trainer.eval.subject import check_stage1, check_stage2, place, stage1_subject


def test_random_stage1_subject_is_plain_and_placed_in_bf16():
    model = ModelConfig(vision=VisionConfig(checkpoint=TINY_RANDOM), llm=LlmConfig(checkpoint=TINY_RANDOM))
    subject = place(stage1_subject("r", ModelSpec(stage1="random", model=model, seed=1)), torch.device("cpu"),
                    torch.bfloat16)
    assert subject.template.name == "plain" and subject.source == "random projector (seed 1)"
    assert {p.dtype for p in subject.model.parameters()} == {torch.bfloat16}
    assert subject.model.image_mean.dtype == torch.float32 and subject.model.image_std.dtype == torch.float32
    assert {p.device.type for p in subject.model.parameters()} == {"cpu"}


def test_missing_and_wrong_run_folders_are_named(tmp_path):
    with pytest.raises(PadError, match=r"models.a.stage1: .*nowhere does not exist"):
        check_stage1("a", ModelSpec(stage1=str(tmp_path / "nowhere")))
    with pytest.raises(PadError, match=r"models.b.stage2: .*nowhere does not exist"):
        check_stage2("b", str(tmp_path / "nowhere"))
    with pytest.raises(PadError, match="no config.yaml"):
        check_stage2("b", str(tmp_path))
    assert check_stage1("c", ModelSpec(stage1="random", model=ModelConfig())) == "random"
