"""lmms-eval hooks of PAD's local REC task (image + referring expression -> normalised box, Acc@0.5).

This file is copied beside the task's YAML and imported by lmms-eval (`!function pad_rec_utils.<name>`),
so it imports nothing from PAD: it runs wherever the task folder is. Each row of the task's JSONL holds
`image` (a path), `expression`, and `bbox`: the truth `[x0, y0, x1, y1]` already normalised in the frame
the writer chose (PAD writes the padded square of `image_aspect: pad`, see `trainer.eval.boxes`).
The prompt is LLaVA-1.5's REC instruction, with none of the two sentences lmms-eval's `refcoco_bbox_rec`
adds before it. An answer scores with the same rules as PAD's `trainer.eval.box_answer`: the first
bracketed `[x0, y0, x1, y1]`; out-of-range or degenerate boxes and answers without one are misses, and
are counted (`unparseable`). Per sample, `rec_acc@0.5` is 1.0 or 0.0, so the task's score is their mean.
"""

from __future__ import annotations

import re
from typing import Any

from PIL import Image

PROMPT = "Please provide the bounding box coordinate of the region this sentence describes: {expression}"
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)"
_BOX = re.compile(rf"\[\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\]")


def doc_to_visual(doc: dict[str, Any]) -> list[Image.Image]:
    with Image.open(doc["image"]) as image:
        return [image.convert("RGB")]


def doc_to_text(doc: dict[str, Any]) -> str:
    return PROMPT.format(expression=doc["expression"])


def parse_box(answer: str) -> tuple[float, float, float, float] | None:
    match = _BOX.search(answer)
    if match is None:
        return None
    x0, y0, x1, y1 = (float(g) for g in match.groups())
    if not all(0.0 <= v <= 1.0 for v in (x0, y0, x1, y1)) or x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1, y1)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    box = parse_box(results[0] if results else "")
    overlap = 0.0 if box is None else iou(box, tuple(doc["bbox"]))
    return {"rec_acc@0.5": float(overlap >= 0.5), "rec_iou": overlap, "unparseable": float(box is None)}
