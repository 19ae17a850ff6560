"""The caption benchmark of `pad eval` (Table 4): COCO caption JSON or Karpathy's split file, told apart by content.

`read_captions` is the cheap open step: it parses the annotations, picks the split, applies `limit` (the first
N images in ascending image id) and checks that every image file exists, without decoding any, so a bad path
or split fails before a model loads. The items it returns carry image paths.
"""

from __future__ import annotations

from pathlib import Path

from pad_pipeline.core.errors import PadError
from trainer.eval.items import CaptionItem
from trainer.eval.readers.coco_captions import coco_caption_items, is_coco_captions
from trainer.eval.readers.files import first, load_json, require_dir, require_file, require_images
from trainer.eval.readers.karpathy import is_karpathy, karpathy_items


def read_captions(annotations: str | Path, images: str | Path, split: str | None = None,
                  limit: int | None = None) -> list[CaptionItem]:
    """The caption items of `annotations` (COCO caption JSON, or Karpathy's with `split`) over folder `images`."""
    path = require_file(annotations, "captions.annotations", "COCO caption JSON (captions_val2017.json) or "
                                                             "Karpathy's dataset_coco.json")
    folder = require_dir(images, "captions.images", "the images the annotations name")
    data = load_json(path, "captions.annotations")
    if is_coco_captions(data):
        items = coco_caption_items(data, path, folder)
    elif is_karpathy(data):
        items = karpathy_items(data, path, folder, split)
    else:
        raise PadError(f"captions.annotations: {path} is neither COCO caption JSON (images + annotations) nor "
                       "Karpathy's split file (images with sentences): give one of those")
    items = first(items, limit)
    if not items:
        raise PadError(f"captions.annotations: {path} has no captioned image{f' in split {split}' if split else ''}"
                       ": give annotations with captions")
    require_images((item.image for item in items if isinstance(item.image, str)), "captions.images", path)
    return items
