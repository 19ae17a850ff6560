"""Referring-expression comprehension (Table 5): LLaVA-1.5's REC prompt, its box answers, Acc@0.5.

The model answers `REC_PROMPT` for each expression; its normalised ``[x0, y0, x1, y1]`` is read in the frame
the model was trained in (`rec.frame`: `image`, normalised by the image's width and height, or `square`, the
padded square of `image_aspect: pad`) and mapped back to pixels of the original image, where it is compared
with the ground-truth box. An answer without a valid box is a miss and is counted as unparseable. When the
frame is `square`, the accuracy lmms-eval's `refcoco_bbox_rec` would give the same answers (it reads them
in the `image` frame) is reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

from trainer.eval.box_answer import REC_PROMPT, box_iou, parse_box
from trainer.eval.boxes import Box, normalised_to_image, square_to_image
from trainer.eval.generate import Query
from trainer.eval.items import RecItem

Frame = Literal["image", "square"]


def rec_queries(items: Sequence[RecItem]) -> list[Query]:
    return [Query(item.image, REC_PROMPT.format(expression=item.expression)) for item in items]


def answer_box(answer: str, frame: Frame, width: int, height: int) -> Box | None:
    """The pixel box an answer names in `frame`, or None when it names no valid box."""
    box = parse_box(answer)
    if box is None:
        return None
    return square_to_image(box, width, height) if frame == "square" else normalised_to_image(box, width, height)


@dataclass(frozen=True)
class RecResult:
    total: int
    hits: int
    unparseable: int
    hits_image_frame: int   # hits when the answers are read in the image frame (lmms-eval's reading)

    @property
    def accuracy(self) -> float:
        return self.hits / self.total if self.total else 0.0

    def as_json(self, frame: Frame) -> dict[str, Any]:
        out: dict[str, Any] = {"accuracy": self.accuracy, "total": self.total, "hits": self.hits,
                               "unparseable": self.unparseable}
        if frame != "image":
            out["accuracy_image_frame"] = self.hits_image_frame / self.total if self.total else 0.0
        return out


def _hit(box: Box | None, truth: Box, threshold: float) -> bool:
    return box is not None and box_iou(box, truth) >= threshold


def score_rows(rows: Sequence[dict[str, Any]], frame: Frame, threshold: float = 0.5) -> RecResult:
    """Acc@`threshold` of prediction rows (as `rec_rows` writes them): recomputed from the answers alone."""
    hits = hits_image = unparseable = 0
    for row in rows:
        x0, y0, x1, y1 = (float(v) for v in row["truth"])
        (w, h), truth = row["size"], (x0, y0, x1, y1)
        box = answer_box(row["answer"], frame, w, h)
        unparseable += box is None
        hits += _hit(box, truth, threshold)
        hits_image += _hit(answer_box(row["answer"], "image", w, h), truth, threshold)
    return RecResult(len(rows), hits, unparseable, hits_image)


def rec_rows(items: Sequence[RecItem], answers: Sequence[str], frame: Frame, threshold: float = 0.5
             ) -> list[dict[str, Any]]:
    """One prediction row per expression: the answer, its pixel box, the truth, IoU and hit."""
    rows = []
    for item, answer in zip(items, answers, strict=True):
        box = answer_box(answer, frame, item.width, item.height)
        iou = box_iou(box, item.box) if box is not None else 0.0
        rows.append({"id": item.sample_id, "expression": item.expression, "answer": answer,
                     "box": None if box is None else [round(v, 3) for v in box], "truth": list(item.box),
                     "size": [item.width, item.height], "iou": round(iou, 6), "hit": iou >= threshold})
    return rows
