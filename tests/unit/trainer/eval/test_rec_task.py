"""REC scoring from prediction rows: frames, misses, and the lmms-eval reading beside ours."""

import pytest
import torch
from torchvision.ops import box_iou

from trainer.eval.boxes import format_box, image_to_normalised, image_to_square
from trainer.eval.items import RecItem
from trainer.eval.rec_task import answer_box, rec_queries, rec_rows, score_rows


def _item(i: int, box, size=(160, 96)) -> RecItem:
    return RecItem(f"s{i}", b"", f"thing {i}", box, *size)


def test_queries_use_llava_prompt():
    (q,) = rec_queries([_item(0, (0, 0, 1, 1))])
    assert q.question == "Please provide the bounding box coordinate of the region this sentence describes: thing 0"


@pytest.mark.parametrize("frame", ["image", "square"])
def test_answer_in_its_frame_maps_back_to_the_pixel_box(frame):
    w, h, box = 160, 96, (20.0, 10.0, 100.0, 80.0)
    normalised = image_to_square(box, w, h) if frame == "square" else image_to_normalised(box, w, h)
    got = answer_box(f"It is {format_box(normalised)}.", frame, w, h)
    assert got is not None
    # two decimals of a 160-px side: within 0.5% of the side
    assert got == pytest.approx(box, abs=0.005 * 160 + 1e-9)


def test_scores_equal_torchvision_iou_and_count_misses():
    w, h = 160, 96
    truths = [(20.0, 10.0, 100.0, 80.0), (0.0, 0.0, 50.0, 40.0), (60.0, 20.0, 150.0, 90.0), (5.0, 5.0, 30.0, 30.0)]
    answers = [format_box(image_to_square(truths[0], w, h)),                  # exact, square frame
               format_box(image_to_square((10.0, 5.0, 50.0, 40.0), w, h)),   # partial overlap
               "I cannot tell.",                                             # unparseable
               "[0.9, 0.9, 1.0, 1.0]"]                                        # parsed, far away
    items = [_item(i, t) for i, t in enumerate(truths)]
    rows = rec_rows(items, answers, "square")
    result = score_rows(rows, "square")
    expected_hits = 0
    for row, truth in zip(rows, truths, strict=True):
        if row["box"] is None:
            continue
        iou = box_iou(torch.tensor([row["box"]], dtype=torch.float64), torch.tensor([truth], dtype=torch.float64))
        assert row["iou"] == pytest.approx(iou.item(), abs=2e-3)  # rows keep 3 decimals of the box
        expected_hits += iou.item() >= 0.5
    assert (result.total, result.hits, result.unparseable) == (4, expected_hits, 1)
    assert result.hits == 2 and result.accuracy == 0.5
    # read in the image frame, the square-frame answer of a 160x96 image no longer matches (IoU < 0.5)
    assert result.hits_image_frame < result.hits
    assert "accuracy_image_frame" in result.as_json("square") and "accuracy_image_frame" not in result.as_json("image")


def test_rows_rescore_to_the_same_result():
    items = [_item(i, (10.0 * i, 0.0, 10.0 * i + 40.0, 40.0)) for i in range(5)]
    answers = [format_box(image_to_normalised((10.0 * i, 0.0, 10.0 * i + 40.0, 40.0), 160, 96)) for i in range(5)]
    rows = rec_rows(items, answers, "image")
    assert all(r["hit"] for r in rows)
    assert score_rows(rows, "image").hits == 5
