"""The model chain: its fault handling around stub stages, and the real chain (tiny-random weights) with each tagger."""

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from pad_pipeline.annotate.chain import Annotator, SystemicModelError
from pad_pipeline.annotate.config import ModelsConfig
from pad_pipeline.annotate.models.base import TagResult
from pad_pipeline.annotate.models.registry import MODEL_PRESETS


class RecordingStage:
    """Adds the columns the annotator reads; fails as told, and records the batch sizes it saw."""

    name = "stub"

    def __init__(self, fail):
        self.fail, self.sizes = fail, []

    def setup(self, device):
        pass

    def provenance(self):
        return {}

    def stats(self):
        return {}

    def __call__(self, batch):
        images = batch["image"]
        self.sizes.append(len(images))
        self.fail(images)
        n = len(images)
        return {**batch, "tags": [TagResult(["x"], [float(im[0, 0, 0])]) for im in images],
                "labels": [[] for _ in range(n)], "empty_masks": [0] * n}


def _annotator(fail):
    ann = Annotator(ModelsConfig(device="cpu"))
    stage = RecordingStage(fail)
    ann.stages = [stage]
    return ann, stage


def _images(values):
    return [np.full((4, 4, 3), v, np.uint8) for v in values]


def test_oom_halves_the_batch_until_it_fits():
    def fail(images):
        if len(images) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    ann, stage = _annotator(fail)
    out = ann.annotate(_images(range(8)))
    assert [o.tag_scores[0] for o in out] == list(range(8))  # order kept
    assert stage.sizes == [8, 4, 2, 2, 4, 2, 2]


def test_single_image_oom_is_a_named_failure():
    def fail(images):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    ann, _ = _annotator(fail)
    assert [o.failure for o in ann.annotate(_images([1, 2]))] == ["oom", "oom"]


def test_one_bad_image_fails_alone():
    def fail(images):
        if any(im[0, 0, 0] == 7 for im in images):
            raise ValueError("cannot handle 7")

    ann, _ = _annotator(fail)
    out = ann.annotate(_images([1, 7, 3]))
    assert out[0].failure is None and out[2].failure is None
    assert out[1].failure.startswith("model_error: ValueError: cannot handle 7")


def test_systemic_error_raises_instead_of_writing_a_shard_of_failures():
    def fail(images):
        raise RuntimeError("weights are garbage")

    ann, _ = _annotator(fail)
    with pytest.raises(SystemicModelError):
        ann.annotate(_images([1, 2, 3]))


@pytest.mark.parametrize("tagger", [
    {"kind": "clip"},
    {"kind": "ram_plus", "image_size": 64},
    {"kind": "ram", "image_size": 64},
])
def test_chain_tags_boxes_masks(tagger):
    preset = MODEL_PRESETS["tiny-random"]
    models = ModelsConfig.model_validate({**preset, "tagger": {**preset["tagger"], **tagger}, "device": "cpu"})
    annotator = Annotator(models).setup()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), rng.integers(0, 255, (70, 52, 3), dtype=np.uint8)]
    results = annotator.annotate(images)
    assert annotator.provenance()["tag"]["name"] == tagger["kind"]
    for image, result in zip(images, results, strict=True):
        assert result.failure is None and result.tags
        assert all(label["tag"] in result.tags for label in result.labels)
        h, w = image.shape[:2]
        for label in result.labels:
            mask = mask_utils.decode({"size": [h, w], "counts": label["rle_mask"].encode()})
            assert int(mask.sum()) == label["area"] > 0
    assert sum(len(r.labels) for r in results) > 0
    # Counts are reported by the stages that keep them (the actor's stats), never in provenance.
    stats = annotator.stats()
    assert set(stats) == {"detect"} and stats["detect"]["dropped_tags"] == 0
    assert stats["detect"]["text_cache"]["rows"] >= stats["detect"]["text_cache"]["encoded"] > 0
    assert "text_cache" not in str(annotator.provenance())
