"""Detect stage: images and each image's tag list go to the detector wrapper; `detections` come back."""

import numpy as np
import torch

from pad_pipeline.annotate.config import ModelsConfig
from pad_pipeline.annotate.models.base import Detections, TagResult
from pad_pipeline.annotate.stages.detect import DetectStage


class StandInDetector:
    """One box per tag, the box's x0 the image's index in the batch (so the pairing shows)."""

    def __init__(self):
        self.calls = []

    def detect(self, images, tags):
        self.calls.append((list(images), [list(t) for t in tags]))
        out = []
        for i, (_, tag_list) in enumerate(zip(images, tags, strict=True)):
            boxes = torch.tensor([[float(i), 0.0, i + 1.0, 1.0]] * len(tag_list)).reshape(-1, 4)
            out.append(Detections(boxes, torch.full((len(tag_list),), 0.5), list(tag_list)))
        return out

    def provenance(self):
        return {"name": "stand-in-detector"}


def test_detector_gets_the_tag_names_of_each_image_in_order():
    models = ModelsConfig()
    stage = DetectStage(models.detector, models)
    stage.model = StandInDetector()
    images = [np.zeros((3, 3, 3), np.uint8), np.ones((3, 3, 3), np.uint8)]
    tags = [TagResult(["dog", "grass"], [0.9, 0.4]), TagResult([], [])]
    out = stage({"image": images, "tags": tags})
    (called_images, called_tags), = stage.model.calls
    assert called_images == images
    assert called_tags == [["dog", "grass"], []]  # names only, not the TagResult objects or scores
    assert [d.labels for d in out["detections"]] == [["dog", "grass"], []]
    assert out["detections"][0].boxes[:, 0].tolist() == [0.0, 0.0]
    assert out["tags"] is tags and out["image"] is images
    assert stage.name == "detect" and stage.role == "detector"
    assert stage.provenance() == {"name": "stand-in-detector"}
