"""Box frames for referring-expression comprehension (LLaVA-1.5 REC).

LLaVA-1.5 writes a box as normalised ``[x0, y0, x1, y1]`` with two decimals. With
``image_aspect: pad`` the image is padded to a centred square of side ``max(w, h)`` before the vision
tower sees it. Which frame the 665K boxes use is NOT settled: LLaVA issue #606 shows the Visual Genome
boxes are relative to the padded square, while #623 and #822 report RefCOCO boxes that only match the
original image (normalised by its own width and height). Both frames are provided here; the caller
states which one it scored. Pure functions; pixel boxes are ``(x0, y0, x1, y1)``.
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
