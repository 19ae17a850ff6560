import json

import pytest

from pad_pipeline.annotate.config import AnnotateConfig
from pad_pipeline.annotate.plan import make_or_resume_plan
from pad_pipeline.core.config import dump_resolved
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.layout import BuildLayout
from pad_pipeline.dataset.reader import load_plan, read_shard_inputs
from pad_pipeline.dataset.writer import plan_identity, write_shard


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
    assert [len(read_shard_inputs(plan, i)) for i in range(3)] == [3, 3, 1]
    first = (tmp_path / "out" / "plan.json").read_text()
    again = make_or_resume_plan(_cfg(src), out)
    assert again.to_json() == plan.to_json()
    assert (tmp_path / "out" / "plan.json").read_text() == first
    assert read_shard_inputs(plan, 2)[0].key == "006_jpg"
    assert json.loads(first)["source_fingerprint"] == plan.source_fingerprint


def _commit_first_shard(cfg, out):
    plan = make_or_resume_plan(cfg, out)
    dump_resolved(cfg, BuildLayout(out).config)
    inputs = read_shard_inputs(plan, 0)
    write_shard(out, 0, [], {i.image_id: "decode_error" for i in inputs}, plan_identity(plan, 0, inputs))


def test_resume_refuses_other_source_shard_size_or_models(tmp_path):
    src = _folder(tmp_path, 4)
    out = str(tmp_path / "out")
    _commit_first_shard(_cfg(src), out)
    with pytest.raises(PadError, match="shard_size.*changed: output.shard_size: 3 then, 2 now"):
        make_or_resume_plan(_cfg(src, shard_size=2), out)
    with pytest.raises(PadError, match="annotation config.*changed: models.seed: 0 then, 5 now"):
        make_or_resume_plan(_cfg(src, seed=5), out)
    (src / "zzz.jpg").write_bytes(b"x")
    with pytest.raises(PadError, match="different source"):
        make_or_resume_plan(_cfg(src), out)


def test_a_build_with_no_committed_shard_is_replanned(tmp_path, capsys):
    wrong, right = _folder(tmp_path, 2), tmp_path / "right"
    right.mkdir()
    for i in range(5):
        (right / f"{i}.jpg").write_bytes(b"x")
    out = str(tmp_path / "out")
    make_or_resume_plan(_cfg(wrong), out)
    dump_resolved(_cfg(wrong), BuildLayout(out).config)
    plan = make_or_resume_plan(_cfg(right), out)
    assert plan.num_items == 5 and load_plan(out).num_items == 5
    assert "re-planning" in capsys.readouterr().err


def test_unreadable_source_is_refused_before_anything_is_written(tmp_path):
    listing = tmp_path / "l.json"
    listing.write_text(json.dumps([{"id": str(i), "image": f"{i}.jpg", "conversations": []} for i in range(9)]))
    cfg = AnnotateConfig(source={"kind": "llava_json", "path": str(listing), "image_root": str(tmp_path / "no")})
    with pytest.raises(PadError, match="field 'source.image_root': none of 5 probed images can be read"):
        make_or_resume_plan(cfg, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_validate_runs_before_the_plan_is_written(tmp_path):
    def refuse(plan):
        raise PadError(f"no: {plan.num_shards}")

    with pytest.raises(PadError, match="no: 2"):
        make_or_resume_plan(_cfg(_folder(tmp_path, 4)), str(tmp_path / "out"), validate=refuse)
    assert not (tmp_path / "out").exists()


def test_runner_settings_do_not_change_the_plan(tmp_path):
    src = _folder(tmp_path, 4)
    out = str(tmp_path / "out")
    make_or_resume_plan(_cfg(src), out)
    cfg = _cfg(src)
    cfg.runner.annotators = 7
    make_or_resume_plan(cfg, out)


def test_a_build_planned_by_the_old_chain_is_refused_in_one_line(tmp_path):
    """Chain output version 1 (unbatched detector) hashed the config without the version and without
    `models.detector.canvas_multiple`; such a build with committed shards is not continued."""
    from pad_pipeline.core.config import config_hash

    src = _folder(tmp_path, 4)
    out = str(tmp_path / "out")
    cfg = _cfg(src)
    _commit_first_shard(cfg, out)
    v1 = config_hash(cfg, exclude={"runner": True, "publish": True, "output": {"path"},
                                   "models": {"detector": {"text_cache_size", "canvas_multiple"}, "compile": True,
                                              "compile_detector": True, "compile_mode": True, "weights_dtype": True}})
    plan_file = tmp_path / "out" / "plan.json"
    data = json.loads(plan_file.read_text())
    assert data["config_hash"] != v1  # the version is part of today's hash
    plan_file.write_text(json.dumps({**data, "config_hash": v1}))
    record_file = tmp_path / "out" / "pad-000000.json"  # the old chain's shard carries the old hash too
    record_file.write_text(json.dumps({**json.loads(record_file.read_text()), "config_hash": v1}))
    with pytest.raises(PadError, match=r"older PAD chain \(output version 1\).*fresh --out") as err:
        make_or_resume_plan(cfg, out)
    assert "\n" not in str(err.value)
