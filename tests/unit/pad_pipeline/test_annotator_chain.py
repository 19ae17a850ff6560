"""The real model chain (tiny-random weights) in one process, with each tagger the registry offers."""

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from pad_pipeline.annotate.config import MODEL_PRESETS, ModelsConfig
from pad_pipeline.annotate.chain import Annotator


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
    for image, result in zip(images, results):
        assert result.failure is None and result.tags
        assert all(label["tag"] in result.tags for label in result.labels)
        h, w = image.shape[:2]
        for label in result.labels:
            mask = mask_utils.decode({"size": [h, w], "counts": label["rle_mask"].encode()})
            assert int(mask.sum()) == label["area"] > 0
    assert sum(len(r.labels) for r in results) > 0
