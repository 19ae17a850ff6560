"""lmms-lab RefCOCO* parquet -> RecItems, checked against lmms-eval 0.7.3's own preprocessing of the same file."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from benchmark_files import png_bytes

from pad_pipeline.core.errors import PadError
from trainer.eval.boxes import image_to_normalised
from trainer.eval.items import open_image
from trainer.eval.readers import check_parquet, read_parquet

# the columns and types of lmms-lab/RefCOCO's parquet files (their datasets features, written by `datasets`)
SCHEMA = pa.schema([("question_id", pa.string()), ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                    ("question", pa.string()), ("answer", pa.list_(pa.string())),
                    ("segmentation", pa.list_(pa.float32())), ("bbox", pa.list_(pa.float32())),
                    ("iscrowd", pa.int8()), ("file_name", pa.string())])
ROWS = [("1001", (40, 30), ["man on left", "guy"], [2.0, 3.0, 10.0, 20.0]),
        ("1002", (30, 60), ["red car"], [0.5, 10.25, 29.0, 40.0]),
        ("1003", (16, 16), [], [0.0, 0.0, 1.0, 1.0])]


def _table(rows: list[tuple[str, tuple[int, int], list[str], list[float]]]) -> pa.Table:
    return pa.Table.from_pylist([{"question_id": q, "image": {"bytes": png_bytes(*size), "path": None},
                                  "question": "Provide a short description for this region.", "answer": answers,
                                  "segmentation": [0.0] * 8, "bbox": bbox, "iscrowd": 0,
                                  "file_name": f"COCO_train2014_{q}.jpg"} for q, size, answers, bbox in rows],
                                schema=SCHEMA)


def test_items_per_sentence_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "val-00000-of-00001.parquet"
    pq.write_table(_table(ROWS), path, row_group_size=2)
    items = list(read_parquet(path))
    assert [i.sample_id for i in items] == ["1001_0", "1001_1", "1002_0"]
    assert [i.expression for i in items] == ["man on left", "guy", "red car"]
    assert items[2].box == (0.5, 10.25, 29.5, 50.25)
    assert [(i.width, i.height) for i in items] == [(40, 30), (40, 30), (30, 60)]
    assert open_image(items[2].image).size == (30, 60)
    assert check_parquet(path) == 3
    assert check_parquet(path, limit=2) == 2
    assert [i.sample_id for i in read_parquet(path, limit=2)] == ["1001_0", "1001_1"]


def test_folder_of_split_files(tmp_path: Path) -> None:
    pq.write_table(_table(ROWS[:1]), tmp_path / "val-00000-of-00002.parquet")
    pq.write_table(_table(ROWS[1:2]), tmp_path / "val-00001-of-00002.parquet")
    pq.write_table(_table(ROWS[:1]), tmp_path / "testA-00000-of-00001.parquet")
    assert [i.sample_id for i in read_parquet(tmp_path, split="val")] == ["1001_0", "1001_1", "1002_0"]
    assert check_parquet(tmp_path, split="testA") == 2
    with pytest.raises(PadError, match=r"rec.split: .* several splits \(testA, val\)"):
        check_parquet(tmp_path)
    with pytest.raises(PadError, match="rec.path: .* holds no testB-\\*.parquet"):
        check_parquet(tmp_path, split="testB")


def test_errors_before_any_image_is_read(tmp_path: Path) -> None:
    with pytest.raises(PadError, match="rec.path: .*missing.parquet is neither a parquet file nor a folder"):
        check_parquet(tmp_path / "missing.parquet")
    path = tmp_path / "x.parquet"
    pq.write_table(_table(ROWS).drop_columns(["bbox"]), path)
    with pytest.raises(PadError, match="x.parquet lacks the column\\(s\\) bbox"):
        check_parquet(path)
    pq.write_table(_table(ROWS[2:]), path)
    with pytest.raises(PadError, match="hold no referring sentence"):
        check_parquet(path)
    pq.write_table(_table([("7", (8, 8), ["a"], [1.0, 2.0])]), path)
    with pytest.raises(PadError, match=r"question_id 7 has bbox \[1.0, 2.0\], not \[x, y, w, h\]"):
        check_parquet(path)
    path.write_bytes(b"PAR1 nonsense")
    with pytest.raises(PadError, match="x.parquet is not a readable parquet file"):
        check_parquet(path)


def test_same_items_and_boxes_as_lmms_eval(tmp_path: Path) -> None:
    """lmms-eval's refcoco_bbox_rec explodes answers and normalises bbox by the image size; so do we."""
    datasets = pytest.importorskip("datasets")
    utils_rec = pytest.importorskip("lmms_eval.tasks.refcoco.utils_rec")
    path = tmp_path / "testA-00000-of-00001.parquet"
    features = datasets.Features({"question_id": datasets.Value("string"), "image": datasets.Image(),
                                  "question": datasets.Value("string"),
                                  "answer": datasets.Sequence(datasets.Value("string")),
                                  "segmentation": datasets.Sequence(datasets.Value("float32")),
                                  "bbox": datasets.Sequence(datasets.Value("float32")),
                                  "iscrowd": datasets.Value("int8"), "file_name": datasets.Value("string")})
    datasets.Dataset.from_list(_table(ROWS).to_pylist(), features=features).to_parquet(str(path))
    theirs = utils_rec.refcoco_bbox_rec_preprocess_dataset(
        datasets.Dataset.from_parquet(str(path), cache_dir=str(tmp_path / "cache")))
    ours = list(read_parquet(path))
    assert [(d["question_id"], d["answer"]) for d in theirs] == [(i.sample_id.split("_")[0], i.expression)
                                                                for i in ours]
    for doc, item in zip(theirs, ours, strict=True):
        # lmms-eval's datasets.map stores the normalised box back as float32: equal to float32 precision
        assert image_to_normalised(item.box, item.width, item.height) == pytest.approx(doc["bbox"], abs=1e-6)
        assert (item.width, item.height) == (doc["image_width"], doc["image_height"])
