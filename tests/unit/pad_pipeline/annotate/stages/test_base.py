"""ModelStage: setup builds the wrapper through the model registry; an unknown kind is a named error."""

import pytest
import torch

from pad_pipeline.annotate.config import ModelsConfig
from pad_pipeline.annotate.stages.detect import DetectStage
from pad_pipeline.annotate.stages.segment import SegmentStage
from pad_pipeline.annotate.stages.tag import TagStage
from pad_pipeline.core.errors import ConfigError


@pytest.mark.parametrize(("stage_cls", "section"), [(TagStage, "tagger"), (DetectStage, "detector"),
                                                    (SegmentStage, "segmenter")])
def test_unknown_kind_fails_in_setup_naming_the_field_and_the_valid_kinds(stage_cls, section):
    models = ModelsConfig()
    cfg = getattr(models, section).model_copy(update={"kind": "no_such_model"})
    stage = stage_cls(cfg, models)
    with pytest.raises(ConfigError, match=rf"models\.{section}\.kind.*no_such_model.*valid: "):
        stage.setup(torch.device("cpu"))
    assert stage.model is None
