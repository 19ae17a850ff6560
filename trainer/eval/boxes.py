"""Box frames for referring-expression comprehension (LLaVA-1.5 REC).

LLaVA-1.5 writes a box as normalised ``[x0, y0, x1, y1]`` with two decimals. With
``image_aspect: pad`` the image is padded to a centred square of side ``max(w, h)`` before the vision
tower sees it, but LLaVA's code never transforms a box (train.py pads the image only; no script builds the
665K boxes), so the frame is whatever the data used, and the data is not consistent:
- RefCOCO/+/g entries are normalised by the ORIGINAL image (x / w, y / h): LLaVA issue #623 draws a real
  mix665k entry (COCO 000000314530, "a man bent over behind the cigarette", [0.61, 0.36, 0.92, 0.83]) on
  both and only the original fits; #822 reports the same. This is `pad eval rec`'s default (`frame: image`),
  and the frame lmms-eval's `refcoco_bbox_rec` scores in.
- Visual Genome region entries are relative to the padded square (#606, KoLLaVA #18).
Both frames are provided here, with their inverses; the caller states which one it scored. Pure functions;
pixel boxes are ``(x0, y0, x1, y1)``.
"""

from __future__ import annotations

Box = tuple[float, float, float, float]


def _offsets(width: int, height: int) -> tuple[float, float, float]:
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    side = float(max(width, height))
    return side, (side - width) / 2.0, (side - height) / 2.0


def image_to_square(box: Box, width: int, height: int) -> Box:
    """Pixel box ``(x0, y0, x1, y1)`` in a ``width x height`` image -> normalised padded-square box."""
    side, dx, dy = _offsets(width, height)
    x0, y0, x1, y1 = box
    return ((x0 + dx) / side, (y0 + dy) / side, (x1 + dx) / side, (y1 + dy) / side)


def square_to_image(box: Box, width: int, height: int) -> Box:
    """Normalised padded-square box -> pixel box in the original image, clipped to the image."""
    side, dx, dy = _offsets(width, height)
    x0, y0, x1, y1 = (v * side for v in box)

    def clip(v: float, hi: int) -> float:
        return min(max(v, 0.0), float(hi))

    return (clip(x0 - dx, width), clip(y0 - dy, height), clip(x1 - dx, width), clip(y1 - dy, height))


def image_to_normalised(box: Box, width: int, height: int) -> Box:
    """Pixel box -> box normalised by the original image size (lmms-eval's ``refcoco_bbox_rec`` frame)."""
    x0, y0, x1, y1 = box
    return (x0 / width, y0 / height, x1 / width, y1 / height)


def xywh_to_xyxy(box: Box) -> Box:
    """COCO ``[x, y, w, h]`` -> ``(x0, y0, x1, y1)``."""
    x, y, w, h = box
    return (x, y, x + w, y + h)


def format_box(box: Box) -> str:
    """The answer text LLaVA-1.5 was trained on: ``[0.12, 0.34, 0.56, 0.78]``."""
    return "[" + ", ".join(f"{v:.2f}" for v in box) + "]"


def normalised_to_image(box: Box, width: int, height: int) -> Box:
    """Box normalised by the original image size -> pixel box (inverse of ``image_to_normalised``)."""
    x0, y0, x1, y1 = box
    return (x0 * width, y0 * height, x1 * width, y1 * height)
