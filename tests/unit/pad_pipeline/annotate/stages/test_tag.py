"""Tag stage: the `image` column goes to the tagger wrapper, its results come back as `tags`."""

import numpy as np
import torch

from pad_pipeline.annotate.config import ModelsConfig
from pad_pipeline.annotate.models.base import TagResult
from pad_pipeline.annotate.stages.tag import TagStage


class StandInTagger:
    """Tags each image by its mean pixel value, so a mix-up between images shows."""

    def __init__(self):
        self.calls = []

    def tag(self, images):
        self.calls.append(list(images))
        return [TagResult([f"grey{int(im.mean())}", "sky"], [0.9, 0.5]) for im in images]

    def provenance(self):
        return {"name": "stand-in", "checkpoint": "none", "revision": None}


def test_tags_column_is_the_taggers_output_one_per_image_in_order():
    models = ModelsConfig()
    stage = TagStage(models.tagger, models)
    stage.model = StandInTagger()
    images = [np.full((4, 5, 3), v, np.uint8) for v in (10, 200, 30)]
    out = stage({"image": images, "key": ["a", "b", "c"]})
    assert len(stage.model.calls) == 1 and stage.model.calls[0] == images  # one call for the whole batch
    assert [t.tags[0] for t in out["tags"]] == ["grey10", "grey200", "grey30"]
    assert out["key"] == ["a", "b", "c"] and out["image"] is images
    assert stage.name == "tag" and stage.role == "tagger"
    assert stage.provenance() == {"name": "stand-in", "checkpoint": "none", "revision": None}


def test_stage_does_not_modify_the_input_batch():
    models = ModelsConfig()
    stage = TagStage(models.tagger, models)
    stage.model = StandInTagger()
    batch = {"image": [np.zeros((2, 2, 3), np.uint8)]}
    stage(batch)
    assert set(batch) == {"image"}


def test_setup_builds_the_tagger_of_the_configured_kind_on_the_device(monkeypatch):
    seen = {}

    def fake_build_model(role, section, models_config, device):
        seen.update(role=role, kind=section.kind, models=models_config, device=device)
        return StandInTagger()

    import pad_pipeline.annotate.stages.base as base

    monkeypatch.setattr(base, "build_model", fake_build_model)
    models = ModelsConfig()
    stage = TagStage(models.tagger, models)
    stage.setup(torch.device("cpu"))
    assert seen == {"role": "tagger", "kind": models.tagger.kind, "models": models, "device": torch.device("cpu")}
    assert isinstance(stage.model, StandInTagger)
