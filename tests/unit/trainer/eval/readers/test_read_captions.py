"""COCO caption JSON and Karpathy split files -> CaptionItems: references, order, split, limit, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmark_files import write_image

from pad_pipeline.core.errors import PadError
from trainer.eval.readers import read_captions

COCO = {
    "info": {}, "licenses": [],
    "images": [{"id": 139, "file_name": "000000000139.jpg", "width": 32, "height": 24},
               {"id": 25, "file_name": "000000000025.jpg", "width": 24, "height": 32},
               {"id": 77, "file_name": "000000000077.jpg", "width": 16, "height": 16}],  # no caption
    "annotations": [{"id": 1, "image_id": 139, "caption": "A room with a table."},
                    {"id": 2, "image_id": 25, "caption": "A giraffe eating."},
                    {"id": 3, "image_id": 139, "caption": "A living room."}],
}


def _karpathy_image(cocoid: int, split: str, sentences: list[str]) -> dict[str, object]:
    return {"filepath": "val2014", "filename": f"COCO_val2014_{cocoid:012d}.jpg", "imgid": cocoid % 97,
            "split": split, "cocoid": cocoid, "sentids": list(range(len(sentences))),
            "sentences": [{"raw": s, "tokens": s.lower().split(), "imgid": 0, "sentid": i}
                          for i, s in enumerate(sentences)]}


KARPATHY = {"dataset": "coco", "images": [
    _karpathy_image(391895, "test", ["A man with a red helmet.", "A biker on a dirt road."]),
    _karpathy_image(60623, "test", ["A woman at a table."]),
    _karpathy_image(483108, "val", ["A train."]),
    _karpathy_image(522418, "restval", ["A pizza."]),
]}


@pytest.fixture
def coco(tmp_path: Path) -> Path:
    (tmp_path / "captions_val2017.json").write_text(json.dumps(COCO))
    for image in COCO["images"]:
        write_image(tmp_path / "val2017" / image["file_name"], image["width"], image["height"])
    return tmp_path


@pytest.fixture
def karpathy(tmp_path: Path) -> Path:
    (tmp_path / "dataset_coco.json").write_text(json.dumps(KARPATHY))
    for image in KARPATHY["images"]:
        write_image(tmp_path / "coco" / image["filepath"] / image["filename"], 20, 10)
    return tmp_path


def test_coco_items_in_image_id_order_with_all_references(coco: Path) -> None:
    items = read_captions(coco / "captions_val2017.json", coco / "val2017")
    assert [i.image_id for i in items] == ["25", "139"]  # 77 has no caption
    assert items[1].references == ("A room with a table.", "A living room.")
    assert items[1].image == str(coco / "val2017" / "000000000139.jpg")
    assert [i.image_id for i in read_captions(coco / "captions_val2017.json", coco / "val2017", limit=1)] == ["25"]


def test_karpathy_split_with_coco_root_or_image_folder(karpathy: Path) -> None:
    items = read_captions(karpathy / "dataset_coco.json", karpathy / "coco", split="test")
    assert [i.image_id for i in items] == ["60623", "391895"]
    assert items[1].references == ("A man with a red helmet.", "A biker on a dirt road.")
    assert items[1].image == str(karpathy / "coco" / "val2014" / "COCO_val2014_000000391895.jpg")
    same = read_captions(karpathy / "dataset_coco.json", karpathy / "coco" / "val2014", split="test")
    assert [i.image for i in same] == [i.image for i in items]
    assert [i.image_id for i in read_captions(karpathy / "dataset_coco.json", karpathy / "coco", "restval")] \
        == ["522418"]


def test_karpathy_split_errors(karpathy: Path) -> None:
    path = karpathy / "dataset_coco.json"
    with pytest.raises(PadError, match="captions.split: .* name a split \\(restval, test, val\\)"):
        read_captions(path, karpathy / "coco")
    with pytest.raises(PadError, match="captions.split: 'train' is not a split of .*dataset_coco.json"):
        read_captions(path, karpathy / "coco", split="train")


def test_missing_files_and_unknown_formats(coco: Path) -> None:
    with pytest.raises(PadError, match="captions.annotations: .*nope.json is not a file"):
        read_captions(coco / "nope.json", coco / "val2017")
    with pytest.raises(PadError, match="captions.images: .*val2014 is not a folder"):
        read_captions(coco / "captions_val2017.json", coco / "val2014")
    (coco / "val2017" / "000000000025.jpg").unlink()
    with pytest.raises(PadError, match=r"captions.images: 1 of the 2 images .* e\.g\. .*000000000025.jpg"):
        read_captions(coco / "captions_val2017.json", coco / "val2017")
    (coco / "other.json").write_text(json.dumps({"images": [{"id": 1}]}))
    with pytest.raises(PadError, match="neither COCO caption JSON .* nor Karpathy"):
        read_captions(coco / "other.json", coco / "val2017")
    (coco / "empty.json").write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(PadError, match="has no captioned image"):
        read_captions(coco / "empty.json", coco / "val2017")
    (coco / "bad.json").write_text("{")
    with pytest.raises(PadError, match="bad.json is not valid JSON"):
        read_captions(coco / "bad.json", coco / "val2017")
