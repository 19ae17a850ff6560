"""`pad sft`'s checks before any training: the index is built once with every entry checked (tokenizer too),
bad entries stop the run by name or are skipped and listed, a resume must read the same data."""

import json
import os

import pytest

from pad_pipeline.core.errors import PadError
from trainer.config.sft import SftConfig
from trainer.data.chat.check import prepare_index
from trainer.training import checkpoint


def _cfg(tmp_path, **data) -> SftConfig:
    return SftConfig.model_validate({
        "model": {"vision": {"checkpoint": "tiny-random"}, "llm": {"checkpoint": "tiny-random", "max_length": 300}},
        "data": {"path": str(tmp_path / "c.json"), "image_folder": str(tmp_path), **data},
        "train": {"output_dir": str(tmp_path / "run")}})


def _write(tmp_path, with_bad: bool) -> None:
    good = [{"id": f"g{i}", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo."}]}
            for i in range(3)]
    bad = [{"id": "long", "conversations": [{"from": "human", "value": "word " * 300},
                                            {"from": "gpt", "value": "ok"}]}]
    (tmp_path / "c.json").write_text(json.dumps(good + (bad if with_bad else [])))
    os.makedirs(tmp_path / "run", exist_ok=True)


def test_a_bad_entry_stops_the_run_before_training_naming_it(tmp_path):
    _write(tmp_path, with_bad=True)
    with pytest.raises(PadError, match=r"1 bad entries \(1 no_target\), first long: no_target .* --check"):
        prepare_index(_cfg(tmp_path), None)
    assert not (tmp_path / "run" / "data-index.parquet").exists()


def test_skipped_entries_are_counted_listed_and_left_out(tmp_path):
    _write(tmp_path, with_bad=True)
    assert prepare_index(_cfg(tmp_path, on_bad_sample="skip"), None) == 3
    listed = [json.loads(line) for line in open(tmp_path / "run" / "skipped-samples.jsonl")]
    assert [(r["id"], r["reason"]) for r in listed] == [("long", "no_target")]


def test_the_index_is_reused_and_rebuilt_when_its_checks_change(tmp_path):
    _write(tmp_path, with_bad=False)
    cfg = _cfg(tmp_path)
    assert prepare_index(cfg, None) == 3
    stamp = os.path.getmtime(tmp_path / "run" / "data-index.parquet")
    assert prepare_index(cfg, None) == 3 and os.path.getmtime(tmp_path / "run" / "data-index.parquet") == stamp
    longer = SftConfig.model_validate({**cfg.model_dump(), "model": {**cfg.model.model_dump(),
                                                                     "llm": {"checkpoint": "tiny-random"}}})
    prepare_index(longer, None)
    assert os.path.getmtime(tmp_path / "run" / "data-index.parquet") != stamp


def test_a_resume_refuses_changed_data(tmp_path):
    _write(tmp_path, with_bad=False)
    cfg = _cfg(tmp_path)
    prepare_index(cfg, None)
    from trainer.data.chat.index import fingerprint

    checkpoint.prepare_partial(cfg.train.output_dir, 2)
    step = checkpoint.commit(cfg.train.output_dir, 2, {"plan": {"fingerprint": fingerprint(cfg.data.path)}}, 2)
    assert prepare_index(cfg, step) == 3
    _write(tmp_path, with_bad=True)
    with pytest.raises(PadError, match="changed since .*step-00000002 was written; resume needs the same data"):
        prepare_index(cfg, step)
