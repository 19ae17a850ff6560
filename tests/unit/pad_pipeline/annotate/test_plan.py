import json

import pytest

from pad_pipeline.annotate.config import AnnotateConfig
from pad_pipeline.annotate.plan import make_or_resume_plan, parse_shard_selection
from pad_pipeline.core.errors import PadError


def _cfg(folder, shard_size=3, **models):
    return AnnotateConfig(source={"kind": "image_dir", "path": str(folder)},
                          output={"shard_size": shard_size}, models=models)


def _folder(tmp_path, n):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    for i in range(n):
        (src / f"{i:03d}.jpg").write_bytes(b"x")
    return src


def test_plan_is_deterministic_and_resumable(tmp_path):
    src = _folder(tmp_path, 7)
    out = str(tmp_path / "out")
    plan = make_or_resume_plan(_cfg(src), out)
    assert (plan.num_items, plan.num_shards) == (7, 3)
    assert [len(plan.shard_inputs(i)) for i in range(3)] == [3, 3, 1]
    first = (tmp_path / "out" / "plan.json").read_text()
    again = make_or_resume_plan(_cfg(src), out)
    assert again.as_dict() == plan.as_dict()
    assert (tmp_path / "out" / "plan.json").read_text() == first
    assert plan.shard_inputs(2)[0].key == "006_jpg"
    assert json.loads(first)["source_fingerprint"] == plan.source_fingerprint


def test_resume_refuses_other_source_shard_size_or_models(tmp_path):
    src = _folder(tmp_path, 4)
    out = str(tmp_path / "out")
    make_or_resume_plan(_cfg(src), out)
    with pytest.raises(PadError, match="shard_size"):
        make_or_resume_plan(_cfg(src, shard_size=2), out)
    with pytest.raises(PadError, match="annotation config"):
        make_or_resume_plan(_cfg(src, seed=5), out)
    (src / "zzz.jpg").write_bytes(b"x")
    with pytest.raises(PadError, match="different source"):
        make_or_resume_plan(_cfg(src), out)


def test_runner_settings_do_not_change_the_plan(tmp_path):
    src = _folder(tmp_path, 4)
    out = str(tmp_path / "out")
    make_or_resume_plan(_cfg(src), out)
    cfg = _cfg(src)
    cfg.runner.workers = 7
    make_or_resume_plan(cfg, out)


def test_shard_selection():
    assert parse_shard_selection("0,3-5", 6) == [0, 3, 4, 5]
    with pytest.raises(PadError, match="out of range"):
        parse_shard_selection("7", 6)
    with pytest.raises(PadError, match="expected"):
        parse_shard_selection("a-b", 6)
