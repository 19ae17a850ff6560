import numpy as np
import torch

from pad_pipeline.annotate.ops.boxes import class_agnostic_nms, clip_to_image, cxcywh_to_xyxy, scale_normalized


def _numpy_nms(boxes, scores, thr):
    order = np.argsort(-scores, kind="stable")
    keep = []
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order.size:
        i = order[0]
        keep.append(i)
        xx0 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy0 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx1 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy1 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.clip(xx1 - xx0, 0, None) * np.clip(yy1 - yy0, 0, None)
        iou = inter / (area[i] + area[order[1:]] - inter)
        order = order[1:][iou <= thr]
    return keep


def test_nms_matches_numpy_reference():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 80, size=(60, 2))
    wh = rng.uniform(5, 40, size=(60, 2))
    boxes = np.concatenate([xy, xy + wh], 1)
    scores = rng.permutation(60).astype(np.float64) / 60
    keep = class_agnostic_nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5)
    assert keep.tolist() == _numpy_nms(boxes, scores, 0.5)
    assert class_agnostic_nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5, max_boxes=3).tolist() \
        == _numpy_nms(boxes, scores, 0.5)[:3]


def test_nms_empty():
    assert class_agnostic_nms(torch.zeros((0, 4)), torch.zeros(0), 0.5).numel() == 0


def test_box_conversions():
    b = torch.tensor([[10.0, 20.0, 4.0, 6.0]])
    assert cxcywh_to_xyxy(b).tolist() == [[8.0, 17.0, 12.0, 23.0]]
    assert clip_to_image(torch.tensor([[-3.0, 2.0, 50.0, 70.0]]), 40, 60).tolist() == [[0.0, 2.0, 40.0, 60.0]]
    assert scale_normalized(torch.tensor([[0.25, 0.5, 1.0, 1.0]]), 40, 60).tolist() == [[10.0, 30.0, 40.0, 60.0]]
