"""Batched device NMS keeps exactly what torchvision.ops.nms keeps, per image, in the same order."""

import pytest
import torch
import torchvision

from pad_pipeline.annotate.models.base import Detections
from pad_pipeline.annotate.stages.nms import batch_nms


def _boxes(g: torch.Generator, n: int) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=g) * 100
    wh = torch.rand(n, 2, generator=g) * 40 + 1
    return torch.cat([xy, xy + wh], 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("iou", [0.3, 0.5, 0.7])
def test_same_kept_boxes_and_order_as_torchvision_per_image(seed, iou):
    g = torch.Generator().manual_seed(seed)
    sizes = [0, 1, 7, 40, 3, 60]
    dets = [Detections(_boxes(g, n), torch.rand(n, generator=g), [f"t{i}_{k}" for k in range(n)])
            for i, n in enumerate(sizes)]
    for max_boxes in (None, 5):
        out = batch_nms(dets, iou, max_boxes)
        for d, o in zip(dets, out, strict=True):
            ref = torchvision.ops.nms(d.boxes, d.scores, iou)[:max_boxes]
            assert o.labels == [d.labels[i] for i in ref.tolist()]
            torch.testing.assert_close(o.boxes, d.boxes[ref], rtol=0, atol=0)
            torch.testing.assert_close(o.scores, d.scores[ref], rtol=0, atol=0)


def test_an_image_result_does_not_depend_on_its_neighbours():
    g = torch.Generator().manual_seed(5)
    a = Detections(_boxes(g, 12), torch.rand(12, generator=g), [str(k) for k in range(12)])
    b = Detections(_boxes(g, 50), torch.rand(50, generator=g), [str(k) for k in range(50)])
    alone = batch_nms([a], 0.5, None)[0]
    together = batch_nms([b, a], 0.5, None)[1]
    assert alone.labels == together.labels and torch.equal(alone.boxes, together.boxes)


def test_a_batch_without_boxes_passes_through():
    empty = [Detections(torch.zeros(0, 4), torch.zeros(0), [])] * 2
    assert [len(d) for d in batch_nms(empty, 0.5, 3)] == [0, 0]
