"""What a benchmark reader yields: one evaluation item per image (captions) or per expression (REC).

Readers (`trainer.eval.readers`) turn the files users have (COCO caption JSON, Karpathy splits, the `refer`
pickles with COCO instances, lmms-lab parquet) into these; generation and scoring never see a file format.
An image is a path or the encoded bytes a parquet row holds; `open_image` decodes either to RGB.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from trainer.eval.boxes import Box

ImageRef = str | bytes


def open_image(image: ImageRef) -> Image.Image:
    """The RGB image behind a path or encoded bytes."""
    with Image.open(io.BytesIO(image) if isinstance(image, bytes) else image) as im:
        return im.convert("RGB")


@dataclass(frozen=True)
class CaptionItem:
    """One image to caption, with its reference captions (COCO has five)."""

    image_id: str
    image: ImageRef
    references: tuple[str, ...]


@dataclass(frozen=True)
class RecItem:
    """One referring expression: the image, the sentence and its ground-truth box.

    `box` is in pixels of the original image, ``(x0, y0, x1, y1)``; `width` x `height` is that image's size.
    `sample_id` is unique within its split (the ref id and sentence index for `refer`, question_id for parquet).
    """

    sample_id: str
    image: ImageRef
    expression: str
    box: Box
    width: int
    height: int
