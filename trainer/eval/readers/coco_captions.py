"""COCO caption annotations (`captions_val2017.json`) -> one `CaptionItem` per captioned image.

The file holds ``images[{id, file_name, width, height}]`` and ``annotations[{image_id, caption}]``; an item's
references are all captions of its image, in file order, and its image is ``IMAGES/file_name``. Items come in
ascending image id; an image without any caption is skipped (it cannot be scored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pad_pipeline.core.errors import PadError
from trainer.eval.items import CaptionItem
from trainer.eval.readers.files import id_order

FIELD = "captions.annotations"


def is_coco_captions(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("annotations"), list) and "images" in data


def _entry(entry: Any, keys: tuple[str, ...], where: str, path: Path) -> tuple[Any, ...]:
    if not isinstance(entry, dict) or any(k not in entry for k in keys):
        raise PadError(f"{FIELD}: {path} {where} lacks one of {', '.join(keys)}: give COCO caption annotations "
                       "(captions_val2017.json)")
    return tuple(entry[k] for k in keys)


def coco_caption_items(data: dict[str, Any], path: Path, images: Path) -> list[CaptionItem]:
    """The items of parsed COCO caption JSON `data` (read from `path`), images under `images`."""
    references: dict[Any, list[str]] = {}
    for i, ann in enumerate(data["annotations"]):
        image_id, caption = _entry(ann, ("image_id", "caption"), f"annotations[{i}]", path)
        references.setdefault(image_id, []).append(str(caption))
    entries = data["images"] if isinstance(data["images"], list) else []
    files = {}
    for i, image in enumerate(entries):
        image_id, file_name = _entry(image, ("id", "file_name"), f"images[{i}]", path)
        files[image_id] = str(file_name)
    return [CaptionItem(str(image_id), str(images / files[image_id]), tuple(references[image_id]))
            for image_id in sorted(files, key=id_order) if references.get(image_id)]
