"""Referring expressions of a synthetic shape scene, each naming exactly one of its shapes.

A pure function of the scene's shapes (colour, kind, pixel box, mask area). Expressions, in order:
- attributes: "the red triangle" (colour + kind pairs are distinct in a scene), "the red shape" (only red
  one), "the triangle" (only triangle);
- a superlative inside a group of at least two (all shapes, or the shapes of one kind): size ("the small
  circle", "the large shape") and position ("the circle on the left", "the shape at the top").
A superlative is used only when it is clear: the area ratio to the next shape is at least `SIZE_RATIO`,
the centre gap to the next shape at least `POSITION_GAP` of the image side, so a reader (or a model) can
tell without measuring pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainer.eval.boxes import Box

SIZE_RATIO = 1.5
POSITION_GAP = 0.2
# word -> (axis of the box centre, sign: +1 picks the smallest coordinate)
POSITIONS: dict[str, tuple[int, int]] = {
    "on the left": (0, 1), "on the right": (0, -1), "at the top": (1, 1), "at the bottom": (1, -1),
}
SIZES: dict[str, int] = {"small": 1, "large": -1}


@dataclass(frozen=True)
class SceneShape:
    color: str
    kind: str
    box: Box          # pixel (x0, y0, x1, y1), exclusive right/bottom edges
    area: int         # mask pixels

    @property
    def centre(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0


def mask_box(mask: np.ndarray) -> Box:
    """Tight pixel box (x0, y0, x1, y1) of a non-empty bool mask (x1, y1 exclusive, as COCO's x + w)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError("empty mask has no box")
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def scene_shapes(tags: list[str], masks: np.ndarray) -> list[SceneShape]:
    """The shapes of a `pad_pipeline.dataset.shapes.Scene` (tags "red circle", exact masks)."""
    shapes = []
    for tag, mask in zip(tags, masks, strict=True):
        color, kind = tag.split(" ", 1)
        shapes.append(SceneShape(color, kind, mask_box(mask), int(mask.sum())))
    return shapes


def _extreme(values: list[float], margin: float, sign: int) -> int | None:
    """Index of the clearly smallest (sign +1) or largest (sign -1) value: ahead of the next by `margin`."""
    order = sorted(range(len(values)), key=lambda i: sign * values[i])
    first, second = order[0], order[1]
    return first if abs(values[second] - values[first]) >= margin else None


def _superlatives(shapes: list[SceneShape], members: list[int], noun: str, image_size: int) -> list[tuple[int, str]]:
    if len(members) < 2:
        return []
    out = []
    for word, sign in SIZES.items():
        # ratio test on log area: a clear size difference whatever the absolute sizes
        logs = [float(np.log(shapes[i].area)) for i in members]
        at = _extreme(logs, float(np.log(SIZE_RATIO)), sign)
        if at is not None:
            out.append((members[at], f"the {word} {noun}"))
    for words, (axis, sign) in POSITIONS.items():
        at = _extreme([shapes[i].centre[axis] for i in members], POSITION_GAP * image_size, sign)
        if at is not None:
            out.append((members[at], f"the {noun} {words}"))
    return out


def referring_expressions(shapes: list[SceneShape], image_size: int) -> list[tuple[int, str]]:
    """Every unambiguous expression of the scene as (shape index, expression), in a fixed order."""
    out: list[tuple[int, str]] = []
    for i, s in enumerate(shapes):
        if sum(t.color == s.color and t.kind == s.kind for t in shapes) == 1:
            out.append((i, f"the {s.color} {s.kind}"))
        if sum(t.color == s.color for t in shapes) == 1 and len(shapes) > 1:
            out.append((i, f"the {s.color} shape"))
        if sum(t.kind == s.kind for t in shapes) == 1 and len(shapes) > 1:
            out.append((i, f"the {s.kind}"))
    out += _superlatives(shapes, list(range(len(shapes))), "shape", image_size)
    for kind in dict.fromkeys(s.kind for s in shapes):
        out += _superlatives(shapes, [i for i, s in enumerate(shapes) if s.kind == kind], kind, image_size)
    return out
