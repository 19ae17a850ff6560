"""Karpathy's split JSON (`dataset_coco.json`) -> one `CaptionItem` per image of one split.

The file holds ``images[{filepath, filename, split, sentences[{raw, tokens, ...}], cocoid, imgid}]`` with
split one of train, restval, val, test. The references are the `raw` sentences (pycocoevalcap tokenizes
them itself); the image id is `cocoid` (`imgid` in the Flickr files). The image is
``IMAGES/filepath/filename`` (IMAGES the COCO root holding val2014/) or, when that file is absent,
``IMAGES/filename`` (IMAGES the val2014 folder itself). Items come in ascending image id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pad_pipeline.core.errors import PadError
from trainer.eval.items import CaptionItem
from trainer.eval.readers.files import id_order

FIELD = "captions.annotations"


def is_karpathy(data: Any) -> bool:
    images = data.get("images") if isinstance(data, dict) else None
    return (isinstance(images, list) and "annotations" not in data
            and all(isinstance(im, dict) and "sentences" in im for im in images[:1]))


def _image_path(entry: dict[str, Any], images: Path) -> str:
    nested = images / str(entry.get("filepath", "")) / str(entry["filename"])
    return str(nested if nested.is_file() else images / str(entry["filename"]))


def karpathy_items(data: dict[str, Any], path: Path, images: Path, split: str | None) -> list[CaptionItem]:
    """The items of split `split` of parsed Karpathy JSON `data` (read from `path`), images under `images`."""
    entries = [e for e in data["images"] if isinstance(e, dict)]
    splits = sorted({str(e.get("split")) for e in entries})
    if split is None:
        raise PadError(f"captions.split: {path} is a Karpathy split file: name a split ({', '.join(splits)})")
    if split not in splits:
        raise PadError(f"captions.split: {split!r} is not a split of {path}: use one of {', '.join(splits)}")
    picked = []
    for i, e in enumerate(entries):
        if e.get("split") != split:
            continue
        if "filename" not in e or not isinstance(e.get("sentences"), list):
            raise PadError(f"{FIELD}: {path} images[{i}] lacks filename or sentences: give Karpathy's "
                           "dataset_coco.json unmodified")
        image_id = e.get("cocoid", e.get("imgid", i))
        refs = tuple(str(s["raw"]) for s in e["sentences"] if isinstance(s, dict) and "raw" in s)
        if refs:
            picked.append((image_id, e, refs))
    picked.sort(key=lambda t: id_order(t[0]))
    return [CaptionItem(str(image_id), _image_path(e, images), refs) for image_id, e, refs in picked]
