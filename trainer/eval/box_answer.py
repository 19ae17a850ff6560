"""Parse a model's REC answer into a box, and score Acc@0.5."""

from __future__ import annotations

import re
from dataclasses import dataclass

from trainer.eval.boxes import Box

REC_PROMPT = "Please provide the bounding box coordinate of the region this sentence describes: {expression}"
"""LLaVA-1.5's REC instruction (the RefCOCO conversations of llava_v1_5_mix665k)."""

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)"
_BOX = re.compile(rf"\[\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\]")


def parse_box(answer: str) -> Box | None:
    """The first bracketed ``[x0, y0, x1, y1]`` in ``answer``, or None when there is none.

    Returns None (a miss) when a coordinate lies outside [0, 1] or the box is degenerate (x1 <= x0 or
    y1 <= y0): such an answer cannot be a normalised box.
    """
    match = _BOX.search(answer)
    if match is None:
        return None
    x0, y0, x1, y1 = (float(g) for g in match.groups())
    if not all(0.0 <= v <= 1.0 for v in (x0, y0, x1, y1)) or x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1, y1)


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes (same convention as torchvision)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class RecScore:
    """Acc@0.5 over one split; unparseable answers count as misses and are reported."""

    total: int
    hits: int
    unparseable: int

    @property
    def accuracy(self) -> float:
        return self.hits / self.total if self.total else 0.0


def score_rec(predictions: list[Box | None], truths: list[Box], threshold: float = 0.5) -> RecScore:
    """Acc@``threshold``: a prediction hits when its IoU with the truth is >= ``threshold``."""
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} predictions for {len(truths)} ground-truth boxes")
    hits = sum(1 for p, t in zip(predictions, truths, strict=True) if p is not None and box_iou(p, t) >= threshold)
    return RecScore(total=len(truths), hits=hits, unparseable=sum(p is None for p in predictions))
