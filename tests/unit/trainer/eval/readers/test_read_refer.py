"""refer annotations (refs pickle + COCO instances + train2014 folder) -> RecItems: order, boxes, splits, errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from benchmark_files import py2_pickle, write_image

from pad_pipeline.core.errors import PadError
from trainer.eval.readers.refer import read_refer, split_matches


def _sent(text: str, sent_id: int) -> dict[str, object]:
    return {"sent": text, "raw": text.capitalize() + ".", "sent_id": sent_id, "tokens": text.split()}


# pickle order is not ref_id order, to see the documented sort
REFS = [
    {"ref_id": 5, "ann_id": 50, "image_id": 1, "split": "testA", "category_id": 1, "file_name": "x_50.jpg",
     "sentences": [_sent("man on left", 0), _sent("guy in red", 1)], "sent_ids": [0, 1]},
    {"ref_id": 2, "ann_id": 20, "image_id": 2, "split": "val", "category_id": 3, "file_name": "x_20.jpg",
     "sentences": [_sent("blue car", 2)], "sent_ids": [2]},
    {"ref_id": 9, "ann_id": 90, "image_id": 2, "split": "testB", "category_id": 3, "file_name": "x_90.jpg",
     "sentences": [_sent("left car", 3)], "sent_ids": [3]},
    {"ref_id": 3, "ann_id": 30, "image_id": 1, "split": "testA", "category_id": 1, "file_name": "x_30.jpg",
     "sentences": [_sent("woman", 4)], "sent_ids": [4]},
]
INSTANCES = {
    "images": [{"id": 1, "file_name": "COCO_train2014_000000000001.jpg", "width": 64, "height": 48},
               {"id": 2, "file_name": "COCO_train2014_000000000002.jpg", "width": 40, "height": 80}],
    "annotations": [{"id": 50, "image_id": 1, "bbox": [4.0, 6.0, 10.0, 20.0], "category_id": 1},
                    {"id": 30, "image_id": 1, "bbox": [30.5, 1.0, 12.0, 9.5], "category_id": 1},
                    {"id": 20, "image_id": 2, "bbox": [0.0, 0.0, 40.0, 30.0], "category_id": 3},
                    {"id": 90, "image_id": 2, "bbox": [1.0, 50.0, 5.0, 5.0], "category_id": 3}],
    "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
}


@pytest.fixture
def refer_dir(tmp_path: Path) -> Path:
    (tmp_path / "refs(unc).p").write_bytes(pickle.dumps(REFS, protocol=2))
    (tmp_path / "instances.json").write_text(json.dumps(INSTANCES))
    for image in INSTANCES["images"]:
        write_image(tmp_path / "train2014" / image["file_name"], image["width"], image["height"])
    return tmp_path


def _read(d: Path, split: str, limit: int | None = None, refs: str = "refs(unc).p") -> list:
    return read_refer(d / refs, d / "instances.json", d / "train2014", split, limit)


def test_items_one_per_sentence_in_ref_id_order_with_xyxy_pixel_boxes(refer_dir: Path) -> None:
    items = _read(refer_dir, "testA")
    assert [i.sample_id for i in items] == ["3_0", "5_0", "5_1"]
    assert [i.expression for i in items] == ["woman", "man on left", "guy in red"]
    assert items[0].box == (30.5, 1.0, 42.5, 10.5)
    assert items[1].box == items[2].box == (4.0, 6.0, 14.0, 26.0)
    assert (items[0].width, items[0].height) == (64, 48)
    assert items[0].image == str(refer_dir / "train2014" / "COCO_train2014_000000000001.jpg")


def test_splits_follow_refer_rules_and_limit(refer_dir: Path) -> None:
    assert [i.sample_id for i in _read(refer_dir, "test")] == ["3_0", "5_0", "5_1", "9_0"]
    assert [i.sample_id for i in _read(refer_dir, "testB")] == ["9_0"]
    assert [i.sample_id for i in _read(refer_dir, "val")] == ["2_0"]
    assert [i.sample_id for i in _read(refer_dir, "testA", limit=2)] == ["3_0", "5_0"]
    assert split_matches("testAB", "testB") and not split_matches("testA", "testB")
    assert not split_matches("val", "test") and not split_matches("train", "val")


def test_python2_pickle_reads_the_same(refer_dir: Path) -> None:
    (refer_dir / "refs(umd).p").write_bytes(py2_pickle(REFS))
    assert _read(refer_dir, "test", refs="refs(umd).p") == _read(refer_dir, "test")


def test_unknown_and_missing_inputs_are_one_line_errors(refer_dir: Path) -> None:
    with pytest.raises(PadError, match=r"rec.split: 'testC' matches no ref .*its splits: testA, testB, val"):
        _read(refer_dir, "testC")
    with pytest.raises(PadError, match=r"rec.refs: .*refs\(umd\).p is not a file"):
        _read(refer_dir, "val", refs="refs(umd).p")
    with pytest.raises(PadError, match="rec.images: .*nowhere is not a folder"):
        read_refer(refer_dir / "refs(unc).p", refer_dir / "instances.json", refer_dir / "nowhere", "val")
    (refer_dir / "train2014" / "COCO_train2014_000000000002.jpg").unlink()
    with pytest.raises(PadError, match=r"rec.images: 1 of the 1 images .* missing, e\.g\. .*000000000002.jpg"):
        _read(refer_dir, "val")
    assert _read(refer_dir, "testA")  # the other image is still there


def test_instances_without_the_ref_annotation(refer_dir: Path) -> None:
    partial = dict(INSTANCES, annotations=INSTANCES["annotations"][1:])
    (refer_dir / "instances.json").write_text(json.dumps(partial))
    with pytest.raises(PadError, match="rec.instances: .* lacks the annotation 50 or image 1 of ref 5"):
        _read(refer_dir, "testA")


def test_refs_that_are_not_refs(refer_dir: Path) -> None:
    (refer_dir / "refs(unc).p").write_bytes(pickle.dumps([{"ref_id": 1}], protocol=2))
    with pytest.raises(PadError, match=r"rec.refs: .* ref #0 lacks one of ref_id, ann_id"):
        _read(refer_dir, "val")
