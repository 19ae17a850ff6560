"""The paper's REC splits resolve to refer files, lmms-lab parquet and lmms-eval tasks that exist upstream."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from pad_pipeline.core.errors import PadError
from trainer.eval.readers.rec_splits import PAPER_REC_SPLITS, rec_split


def test_the_eight_columns_of_table5() -> None:
    assert [s.name for s in PAPER_REC_SPLITS] == [
        "refcoco_val", "refcoco_testA", "refcoco_testB", "refcoco+_val", "refcoco+_testA", "refcoco+_testB",
        "refcocog_val", "refcocog_test"]
    assert rec_split("refcocog", "test").refs_file == "refs(umd).p"
    assert rec_split("refcoco+", "testB").refs_file == "refs(unc).p"
    assert rec_split("refcoco+", "val").hub_dataset == "lmms-lab/RefCOCOplus"
    refs, instances, images = rec_split("refcoco", "testA").refer_paths("data")
    assert (refs, instances, images) == (Path("data/refcoco/refs(unc).p"), Path("data/refcoco/instances.json"),
                                         Path("data/images/mscoco/images/train2014"))


def test_unknown_split_lists_the_valid_ones() -> None:
    with pytest.raises(PadError, match="refcocog testA is not a REC split .* refcocog val, refcocog test"):
        rec_split("refcocog", "testA")


def test_lmms_eval_has_each_task() -> None:
    spec = importlib.util.find_spec("lmms_eval")  # located, not imported (importing its tasks takes seconds)
    if spec is None or spec.origin is None:
        pytest.skip("lmms-eval is not installed (the eval extra)")
    folder = Path(spec.origin).parent / "tasks"
    for s in PAPER_REC_SPLITS:
        assert (folder / s.dataset / f"{s.lmms_eval_task}.yaml").is_file(), s.lmms_eval_task
