"""Segment stage: images and each image's (post-NMS) boxes go to the segmenter wrapper; `masks` come back."""

import numpy as np
import torch

from pad_pipeline.annotate.config import ModelsConfig
from pad_pipeline.annotate.models.base import Detections, MaskResult
from pad_pipeline.annotate.stages.segment import SegmentStage


class StandInSegmenter:
    """Fills each box on an image-sized mask (boxes in integer pixels)."""

    def __init__(self):
        self.calls = []

    def segment(self, images, boxes):
        self.calls.append((list(images), list(boxes)))
        out = []
        for im, b in zip(images, boxes, strict=True):
            masks = torch.zeros(len(b), im.shape[0], im.shape[1], dtype=torch.bool)
            for j, (x0, y0, x1, y1) in enumerate(b.long().tolist()):
                masks[j, y0:y1, x0:x1] = True
            out.append(MaskResult(masks, torch.full((len(b),), 0.8)))
        return out

    def provenance(self):
        return {"name": "stand-in-segmenter"}


def test_segmenter_gets_each_images_boxes_and_masks_come_back_per_image():
    models = ModelsConfig()
    stage = SegmentStage(models.segmenter, models)
    stage.model = StandInSegmenter()
    images = [np.zeros((6, 8, 3), np.uint8), np.zeros((5, 5, 3), np.uint8)]
    d1 = Detections(torch.tensor([[0.0, 0.0, 2.0, 3.0], [4.0, 1.0, 8.0, 6.0]]), torch.tensor([0.9, 0.8]), ["a", "b"])
    d2 = Detections(torch.zeros(0, 4), torch.zeros(0), [])
    out = stage({"image": images, "detections": [d1, d2]})
    (called_images, called_boxes), = stage.model.calls
    assert called_images == images
    assert called_boxes[0] is d1.boxes and called_boxes[1] is d2.boxes
    m1, m2 = out["masks"]
    assert m1.masks.shape == (2, 6, 8) and m2.masks.shape == (0, 5, 5)
    assert m1.masks.flatten(1).sum(1).tolist() == [6, 20]
    assert out["detections"] == [d1, d2]  # the stage adds `masks`, it does not touch detections
    assert stage.name == "segment" and stage.role == "segmenter"
    assert stage.provenance() == {"name": "stand-in-segmenter"}
