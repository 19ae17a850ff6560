"""NMS stage: class-agnostic torchvision NMS per image; boxes keep their own tag and score."""

import torch
import torchvision

from pad_pipeline.annotate.config import NmsConfig
from pad_pipeline.annotate.models.base import Detections
from pad_pipeline.annotate.stages.nms import NmsStage


def _random_detections(seed: int, n: int) -> Detections:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 80
    wh = torch.rand(n, 2, generator=g) * 40 + 5
    boxes = torch.cat([xy, xy + wh], 1)
    scores = torch.randperm(n, generator=g).float() / n
    return Detections(boxes, scores, [f"tag{i}" for i in range(n)])


def test_each_image_matches_torchvision_nms_and_labels_follow_their_boxes():
    stage = NmsStage(NmsConfig(iou_threshold=0.3, max_boxes=100))
    stage.setup(torch.device("cpu"))
    dets = [_random_detections(0, 50), _random_detections(1, 30)]
    out = stage({"image": ["a", "b"], "detections": dets})
    assert out["image"] == ["a", "b"]  # other columns pass through
    assert len(out["detections"]) == 2
    for before, after in zip(dets, out["detections"], strict=True):
        keep = torchvision.ops.nms(before.boxes, before.scores, 0.3)
        assert 0 < len(after) < len(before)
        torch.testing.assert_close(after.boxes, before.boxes[keep])
        torch.testing.assert_close(after.scores, before.scores[keep])
        assert after.labels == [before.labels[i] for i in keep.tolist()]
        assert after.scores.tolist() == sorted(after.scores.tolist(), reverse=True)


def test_suppression_ignores_the_tag():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 9.0], [50.0, 50.0, 60.0, 60.0]])
    dets = Detections(boxes, torch.tensor([0.5, 0.9, 0.4]), ["dog", "cat", "dog"])
    out = NmsStage(NmsConfig(iou_threshold=0.5))({"detections": [dets]})["detections"][0]
    assert out.labels == ["cat", "dog"]  # the "dog" under the better "cat" box is gone
    torch.testing.assert_close(out.scores, torch.tensor([0.9, 0.4]))


def test_max_boxes_keeps_the_best_scoring_ones():
    dets = _random_detections(2, 40)
    out = NmsStage(NmsConfig(iou_threshold=1.0, max_boxes=5))({"detections": [dets]})["detections"][0]
    assert len(out) == 5
    torch.testing.assert_close(out.scores, dets.scores.sort(descending=True).values[:5])


def test_an_image_without_detections_stays_empty():
    empty = Detections(torch.zeros(0, 4), torch.zeros(0), [])
    out = NmsStage(NmsConfig())({"detections": [empty, _random_detections(3, 4)]})["detections"]
    assert len(out[0]) == 0 and out[0].labels == []
    assert len(out[1]) > 0


def test_provenance_names_the_operation_and_threshold():
    assert NmsStage(NmsConfig(iou_threshold=0.45)).provenance() == {"name": "torchvision.nms", "iou_threshold": 0.45}
