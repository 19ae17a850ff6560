"""The files of the miniature, in the formats users hold the real data in.

- `write_rec_conversations`: REC training conversations in the llava_v1_5_mix665k.json format + an image
  folder. One entry per image, its expressions as turns of one conversation, as LLaVA's RefCOCO entries
  are (the first human turn "<image>\\n" + `REC_PROMPT`, later ones the prompt alone; each gpt turn the box
  as `format_box` writes it, normalised to the padded square: `image_to_square`). Multi-turn also makes a
  CPU step cheaper: the image tokens and the system prompt are paid once per several answers.
- `write_refer`: a held-out REC split as the `refer` toolkit reads RefCOCO: `refs(unc).p` (a protocol-2
  pickle of ref dicts), COCO `instances.json` (images, annotations with xywh boxes and RLE masks,
  categories) and an image folder.
- `write_coco_captions`: COCO caption JSON (`captions_*.json`: info, images, annotations with captions).
Image ids are `image_id(scene)`; file names `image_file(prefix, scene)`.
"""

from __future__ import annotations

import json
import os
import pickle
from typing import Any

from pycocotools import mask as mask_utils

from pad_pipeline.dataset.shapes import SHAPES
from trainer.eval.box_answer import REC_PROMPT
from trainer.eval.boxes import format_box, image_to_square
from trainer.eval.miniature.scenes import RecScene

CATEGORIES = [{"supercategory": "shape", "id": i + 1, "name": kind} for i, kind in enumerate(SHAPES)]
CATEGORY_ID = {c["name"]: c["id"] for c in CATEGORIES}


def image_id(scene: RecScene) -> int:
    return scene.index + 1  # COCO ids start at 1


def image_file(prefix: str, scene: RecScene) -> str:
    return f"{prefix}_{image_id(scene):012d}.jpg"  # as COCO_train2014_000000581857.jpg


def write_images(scenes: list[RecScene], folder: str, prefix: str, jpeg_quality: int = 95) -> None:
    os.makedirs(folder, exist_ok=True)
    for s in scenes:
        path = os.path.join(folder, image_file(prefix, s))
        if not os.path.isfile(path):
            with open(path, "wb") as f:
                f.write(s.jpeg(jpeg_quality))


def rec_answer(scene: RecScene, shape: int) -> str:
    w, h = scene.size
    return format_box(image_to_square(scene.shapes[shape].box, w, h))


def rec_entry(scene: RecScene, prefix: str) -> dict[str, Any]:
    turns: list[dict[str, str]] = []
    for k, (shape, expression) in enumerate(scene.expressions):
        prompt = REC_PROMPT.format(expression=expression)
        turns.append({"from": "human", "value": ("<image>\n" + prompt) if k == 0 else prompt})
        turns.append({"from": "gpt", "value": rec_answer(scene, shape)})
    return {"id": f"{prefix}-{image_id(scene):012d}", "image": image_file(prefix, scene), "conversations": turns}


def _dump_json(data: Any, path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)  # a reader never sees half a file


def write_rec_conversations(scenes: list[RecScene], json_path: str, image_folder: str, prefix: str,
                            jpeg_quality: int = 95) -> int:
    """Write the conversations and their images; returns the number of entries."""
    entries = [rec_entry(s, prefix) for s in scenes if s.expressions]
    write_images(scenes, image_folder, prefix, jpeg_quality)
    _dump_json(entries, json_path)
    return len(entries)


def _annotation_id(scene: RecScene, shape: int) -> int:
    return image_id(scene) * 100 + shape  # <= 100 shapes per scene (the build allows far fewer)


def instances(scenes: list[RecScene], prefix: str) -> dict[str, Any]:
    images, annotations = [], []
    for s in scenes:
        w, h = s.size
        images.append({"id": image_id(s), "file_name": image_file(prefix, s), "width": w, "height": h})
        for k, shape in enumerate(s.shapes):
            x0, y0, x1, y1 = shape.box
            rle = mask_utils.encode(s.scene.masks[k].astype("uint8", order="F"))
            annotations.append({"id": _annotation_id(s, k), "image_id": image_id(s),
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "category_id": CATEGORY_ID[shape.kind],
                                "area": float(shape.area), "iscrowd": 0,
                                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")}})
    return {"info": {"description": "PAD synthetic shapes (REC miniature)"}, "images": images,
            "annotations": annotations, "categories": CATEGORIES}


def refs(scenes: list[RecScene], prefix: str, split: str) -> list[dict[str, Any]]:
    """One ref per expression (a shape named by several expressions would group them in RefCOCO; here a
    ref per (shape, expression) keeps every expression one evaluated sample either way)."""
    out: list[dict[str, Any]] = []
    sent_id = 0
    for s in scenes:
        for shape, expression in s.expressions:
            ann_id = _annotation_id(s, shape)
            stem = image_file(prefix, s).rsplit(".", 1)[0]
            sentence = {"tokens": expression.split(), "raw": expression, "sent_id": sent_id, "sent": expression}
            out.append({"sent_ids": [sent_id], "file_name": f"{stem}_{ann_id}.jpg", "ann_id": ann_id,
                        "ref_id": len(out), "image_id": image_id(s), "split": split, "sentences": [sentence],
                        "category_id": CATEGORY_ID[s.shapes[shape].kind]})
            sent_id += 1
    return out


def write_refer(scenes: list[RecScene], folder: str, prefix: str, split: str = "val", split_by: str = "unc",
                jpeg_quality: int = 95) -> dict[str, str]:
    """`folder/refs(split_by).p`, `folder/instances.json`, `folder/images/`; returns those paths."""
    paths = {"refs": os.path.join(folder, f"refs({split_by}).p"),
             "instances": os.path.join(folder, "instances.json"), "images": os.path.join(folder, "images")}
    write_images(scenes, paths["images"], prefix, jpeg_quality)
    _dump_json(instances(scenes, prefix), paths["instances"])
    with open(paths["refs"] + ".tmp", "wb") as f:
        pickle.dump(refs(scenes, prefix, split), f, protocol=2)  # refer's files are protocol 2 (Python 2)
    os.replace(paths["refs"] + ".tmp", paths["refs"])
    return paths


def write_coco_captions(scenes: list[RecScene], json_path: str, image_folder: str, prefix: str,
                        jpeg_quality: int = 95) -> None:
    images = [{"id": image_id(s), "file_name": image_file(prefix, s), "width": s.size[0], "height": s.size[1]}
              for s in scenes]
    annotations = [{"id": i + 1, "image_id": image_id(s), "caption": s.scene.caption} for i, s in enumerate(scenes)]
    write_images(scenes, image_folder, prefix, jpeg_quality)
    _dump_json({"info": {"description": "PAD synthetic shapes (caption miniature)"}, "licenses": [],
                "type": "captions", "images": images, "annotations": annotations}, json_path)
