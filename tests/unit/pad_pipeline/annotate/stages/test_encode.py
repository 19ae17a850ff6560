"""Encode stage: detections + masks -> label records: COCO RLE that pycocotools decodes back to the
mask, empty masks dropped and counted, best score first, numbers rounded."""

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from pad_pipeline.annotate.models.base import Detections, MaskResult
from pad_pipeline.annotate.stages.encode import EncodeStage, image_labels

H, W = 12, 17


def _masks(seed: int, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, H, W, generator=g) > 0.6


def _decode(label: dict) -> np.ndarray:
    return mask_utils.decode({"size": [H, W], "counts": label["rle_mask"].encode("ascii")})


def test_rle_masks_decode_to_the_input_masks_with_their_areas():
    masks = _masks(0, 3)
    dets = Detections(torch.tensor([[1.0, 2.0, 5.0, 6.0]] * 3), torch.tensor([0.9, 0.8, 0.7]), ["a", "b", "c"])
    labels, empty = image_labels(dets, MaskResult(masks, torch.tensor([0.5, 0.6, 0.7])))
    assert empty == 0
    assert [lab["tag"] for lab in labels] == ["a", "b", "c"]
    for lab, mask in zip(labels, masks, strict=True):
        np.testing.assert_array_equal(_decode(lab), mask.numpy().astype(np.uint8))
        assert lab["area"] == int(mask.sum())
        assert isinstance(lab["rle_mask"], str)


def test_labels_are_sorted_by_score_and_keep_their_own_box_mask_and_tag():
    masks = _masks(1, 3)
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 3.0, 3.0], [4.0, 4.0, 5.0, 5.0]])
    dets = Detections(boxes, torch.tensor([0.2, 0.9, 0.5]), ["low", "high", "mid"])
    labels, _ = image_labels(dets, MaskResult(masks, torch.tensor([0.1, 0.2, 0.3])))
    assert [lab["tag"] for lab in labels] == ["high", "mid", "low"]
    assert [lab["score"] for lab in labels] == [0.9, 0.5, 0.2]
    assert [lab["bbox"] for lab in labels] == [[2.0, 2.0, 3.0, 3.0], [4.0, 4.0, 5.0, 5.0], [0.0, 0.0, 1.0, 1.0]]
    assert [lab["mask_score"] for lab in labels] == pytest.approx([0.2, 0.3, 0.1])
    for lab, i in zip(labels, [1, 2, 0], strict=True):
        np.testing.assert_array_equal(_decode(lab), masks[i].numpy().astype(np.uint8))


def test_empty_masks_are_dropped_and_counted():
    masks = _masks(2, 4)
    masks[1] = False
    masks[3] = False
    dets = Detections(torch.rand(4, 4) * 10, torch.tensor([0.9, 0.8, 0.7, 0.6]), ["a", "b", "c", "d"])
    labels, empty = image_labels(dets, MaskResult(masks, torch.ones(4)))
    assert empty == 2
    assert [lab["tag"] for lab in labels] == ["a", "c"]
    assert all(lab["area"] > 0 for lab in labels)


def test_numbers_are_rounded_box_to_a_tenth_and_scores_to_four_decimals():
    mask = torch.zeros(1, H, W, dtype=torch.bool)
    mask[0, 2:5, 3:9] = True
    dets = Detections(torch.tensor([[1.23456, 2.36, 10.98765, 11.04]]), torch.tensor([0.123456789]), ["x"])
    (label,), _ = image_labels(dets, MaskResult(mask, torch.tensor([0.987654321])))
    assert label["bbox"] == [1.2, 2.4, 11.0, 11.0]
    assert label["score"] == 0.1235
    assert label["mask_score"] == 0.9877
    assert label["area"] == 18 and isinstance(label["area"], int)
    assert set(label) == {"tag", "bbox", "score", "mask_score", "area", "rle_mask"}


def test_no_detections_give_no_labels():
    dets = Detections(torch.zeros(0, 4), torch.zeros(0), [])
    assert image_labels(dets, MaskResult(torch.zeros(0, H, W, dtype=torch.bool), torch.zeros(0))) == ([], 0)


def test_stage_adds_labels_and_empty_mask_counts_per_image():
    masks = _masks(3, 2)
    masks[0] = False
    d1 = Detections(torch.rand(2, 4), torch.tensor([0.4, 0.3]), ["p", "q"])
    d2 = Detections(torch.zeros(0, 4), torch.zeros(0), [])
    stage = EncodeStage()
    stage.setup(torch.device("cpu"))
    out = stage({"image": [1, 2], "detections": [d1, d2],
                 "masks": [MaskResult(masks, torch.ones(2)), MaskResult(torch.zeros(0, H, W, dtype=torch.bool),
                                                                         torch.zeros(0))]})
    assert out["image"] == [1, 2]
    assert out["empty_masks"] == [1, 0]
    assert [[lab["tag"] for lab in labels] for labels in out["labels"]] == [["q"], []]
    assert stage.provenance() == {}
