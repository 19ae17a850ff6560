"""The REC answer parser and Acc@0.5, checked against torchvision's box_iou."""

import random

import pytest
import torch
from torchvision.ops import box_iou as tv_box_iou

from trainer.eval.box_answer import REC_PROMPT, box_iou, parse_box, score_rec


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("[0.12, 0.34, 0.56, 0.78]", (0.12, 0.34, 0.56, 0.78)),
        ("The box is [0.1,0.2,0.3,0.4].", (0.1, 0.2, 0.3, 0.4)),
        ("[ .1 , 0.2 , 1 , 0.9 ] and [0.5, 0.5, 0.6, 0.6]", (0.1, 0.2, 1.0, 0.9)),
        ("[0.1, 0.2, 0.3]", None),  # partial
        ("[0.1, 0.2, 0.3, 0.4", None),  # unterminated
        ("0.1, 0.2, 0.3, 0.4", None),  # no brackets
        ("[0.1, 0.2, 1.3, 0.4]", None),  # out of range
        ("[0.5, 0.2, 0.3, 0.4]", None),  # x1 < x0
        ("[a, b, c, d]", None),
        ("", None),
    ],
)
def test_parse_box(answer: str, expected: tuple[float, ...] | None) -> None:
    got = parse_box(answer)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_iou_equals_torchvision() -> None:
    rng = random.Random(0)
    for _ in range(200):
        a = sorted(rng.random() for _ in range(2)), sorted(rng.random() for _ in range(2))
        b = sorted(rng.random() for _ in range(2)), sorted(rng.random() for _ in range(2))
        box_a = (a[0][0], a[1][0], a[0][1], a[1][1])
        box_b = (b[0][0], b[1][0], b[0][1], b[1][1])
        ref = tv_box_iou(torch.tensor([box_a], dtype=torch.float64), torch.tensor([box_b], dtype=torch.float64))
        assert box_iou(box_a, box_b) == pytest.approx(ref.item(), abs=1e-9)


def test_score_rec_counts_unparseable_as_misses() -> None:
    truths = [(0.0, 0.0, 0.5, 0.5), (0.0, 0.0, 0.5, 0.5), (0.2, 0.2, 0.4, 0.4), (0.0, 0.0, 1.0, 1.0)]
    preds = [(0.0, 0.0, 0.5, 0.5), (0.0, 0.0, 0.5, 0.25), None, (0.5, 0.5, 1.0, 1.0)]
    score = score_rec(preds, truths)
    assert (score.total, score.hits, score.unparseable) == (4, 2, 1)  # IoU 1.0 and exactly 0.5 hit
    assert score.accuracy == 0.5
    with pytest.raises(ValueError, match="3 predictions for 4"):
        score_rec(preds[:3], truths)


def test_prompt_is_llava_rec_instruction() -> None:
    assert REC_PROMPT.format(expression="man on left").endswith("this sentence describes: man on left")
