"""The `refer` annotations of RefCOCO, RefCOCO+ and RefCOCOg -> one `RecItem` per referring sentence.

`refs(unc).p` (RefCOCO, RefCOCO+) and `refs(umd).p` (RefCOCOg) are pickled lists of refs
``{ref_id, ann_id, image_id, split, sentences[{sent, raw, sent_id, tokens}], category_id, file_name}``; the
box is the COCO annotation `ann_id` of the `instances.json` beside them (``bbox`` ``[x, y, w, h]`` in pixels,
made ``(x0, y0, x1, y1)`` here) and the image its ``file_name`` in the train2014 folder, of the size the
instances give. The sentence is `sent` (refer's cleaned, lower-case text; `raw` when absent).

Splits follow refer's `getRefIds`: ``train`` and ``val`` match exactly, ``test`` matches every test split
(``testA``, ``testB``, ...), ``testA`` every split that starts with ``test`` and has ``A`` after it; any other
name matches exactly. Order: ascending ref_id, then the ref's sentences in file order; `sample_id` is
``{ref_id}_{k}`` with k the sentence's index in its ref. The pickle is loaded by `load_plain_pickle`, which
refuses anything but plain data. `read_refer` is the cheap open step: nothing is decoded, image files are
only checked to exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pad_pipeline.core.errors import PadError
from trainer.eval.boxes import xywh_to_xyxy
from trainer.eval.items import RecItem
from trainer.eval.readers.files import first, id_order, load_json, require_dir, require_file, require_images
from trainer.eval.readers.plain_pickle import load_plain_pickle

REF_KEYS = ("ref_id", "ann_id", "image_id", "split", "sentences")
IMAGE_KEYS = ("file_name", "width", "height")


def split_matches(ref_split: str, wanted: str) -> bool:
    """Whether a ref of split `ref_split` belongs to the requested split `wanted` (refer's rules)."""
    if wanted == "test":
        return ref_split.startswith("test")
    if len(wanted) == 5 and wanted.startswith("test") and wanted[4].isupper():
        return ref_split.startswith("test") and wanted[4] in ref_split[4:]
    return ref_split == wanted


def load_refs(path: Path, field: str = "rec") -> list[dict[str, Any]]:
    """The refs of a `refs(...).p` file, each checked to carry the fields used here."""
    refs = load_plain_pickle(path)
    if not isinstance(refs, list):
        raise PadError(f"{field}.refs: {path} holds a {type(refs).__name__}, not a list of refs: give refer's "
                       "refs(unc).p or refs(umd).p")
    for i, ref in enumerate(refs):
        if not isinstance(ref, dict) or any(k not in ref for k in REF_KEYS):
            raise PadError(f"{field}.refs: {path} ref #{i} lacks one of {', '.join(REF_KEYS)}: give refer's "
                           "refs(unc).p or refs(umd).p")
    return refs


def _index(entries: Any, path: Path, what: str, field: str) -> dict[Any, dict[str, Any]]:
    if not isinstance(entries, list):
        raise PadError(f"{field}.instances: {path} has no {what} list: give the COCO instances.json of the refer "
                       "folder")
    return {e["id"]: e for e in entries if isinstance(e, dict) and "id" in e}


def _sentence(sentence: Any) -> str | None:
    if isinstance(sentence, dict):
        text = sentence.get("sent", sentence.get("raw"))
        return str(text) if text is not None else None
    return None


def read_refer(refs: str | Path, instances: str | Path, images: str | Path, split: str,
               limit: int | None = None, field: str = "rec") -> list[RecItem]:
    """The REC items of `split` (its first `limit` sentences) of a refer dataset; errors name `field`.refs etc."""
    refs_path = require_file(refs, f"{field}.refs", "refer's refs(unc).p (RefCOCO, RefCOCO+) or refs(umd).p (RefCOCOg)")
    inst_path = require_file(instances, f"{field}.instances", "the COCO instances.json beside the refs file")
    folder = require_dir(images, f"{field}.images", "COCO train2014 images")
    all_refs = load_refs(refs_path, field)
    picked = sorted((r for r in all_refs if split_matches(str(r["split"]), split)), key=lambda r: id_order(r["ref_id"]))
    if not picked:
        known = ", ".join(sorted({str(r["split"]) for r in all_refs}))
        raise PadError(f"{field}.split: {split!r} matches no ref of {refs_path} (its splits: {known}): "
                       "name one of them")
    data = load_json(inst_path, f"{field}.instances")
    if not isinstance(data, dict):
        raise PadError(f"{field}.instances: {inst_path} is not a COCO instances file: give the instances.json of the "
                       "refer folder")
    anns = _index(data.get("annotations"), inst_path, "annotations", field)
    imgs = _index(data.get("images"), inst_path, "images", field)
    items: list[RecItem] = []
    for ref in picked:
        ann, img = anns.get(ref["ann_id"]), imgs.get(ref["image_id"])
        if ann is None or img is None or "bbox" not in ann or any(k not in img for k in IMAGE_KEYS):
            raise PadError(f"{field}.instances: {inst_path} lacks the annotation {ref['ann_id']} or image "
                           f"{ref['image_id']} of ref {ref['ref_id']} in {refs_path}: give the instances.json "
                           "of the same refer folder")
        x, y, w, h = (float(v) for v in ann["bbox"])
        for k, sentence in enumerate(ref["sentences"]):
            text = _sentence(sentence)
            if text is None:
                raise PadError(f"{field}.refs: {refs_path} ref {ref['ref_id']} sentence {k} has neither sent nor raw")
            items.append(RecItem(f"{ref['ref_id']}_{k}", str(folder / str(img["file_name"])), text,
                                 xywh_to_xyxy((x, y, w, h)), int(img["width"]), int(img["height"])))
    items = first(items, limit)
    if not items:
        raise PadError(f"{field}.split: split {split!r} of {refs_path} has refs but no sentences: pick another split")
    require_images((item.image for item in items if isinstance(item.image, str)), f"{field}.images", refs_path)
    return items
