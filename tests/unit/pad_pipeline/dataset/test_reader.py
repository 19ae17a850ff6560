"""The one commit rule, applied by `scan_shards` to every state a shard's files can be in, and checked
against the build's plan: a record of another plan, config, shard or input list never counts."""

import json

import pytest

from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset import reader
from pad_pipeline.dataset.records import Label, Plan, PlannedInput, RecordError, Sample, SampleRecord
from pad_pipeline.dataset.writer import build_tar, plan_identity, write_plan, write_shard


def _sample(key):
    return Sample(key, b"\xff\xd8" + key.encode(), SampleRecord(f"{key}.jpg", [4, 3], "c", ["a"],
                                                                [Label("a", [0, 0, 1, 1], 0.5, 0.5, 1, "0")]))


def planned_build(out: str, num_shards: int, config_hash: str = "h") -> tuple[Plan, list[PlannedInput]]:
    """A plan of `num_shards` shards of one input each (`k0.jpg`, `k1.jpg`, ...)."""
    inputs = [PlannedInput(f"k{i}.jpg", "c", f"/src/k{i}.jpg", f"k{i}") for i in range(num_shards)]
    return write_plan(Plan(out, "fp", config_hash, 1, num_shards, num_shards), inputs), inputs


def commit(plan: Plan, inputs: list[PlannedInput], index: int) -> None:
    write_shard(plan.out, index, [_sample(f"k{index}")], {}, plan_identity(plan, index, inputs[index:index + 1]))


def test_states_of_every_kind(tmp_path):
    out = str(tmp_path)
    plan, inputs = planned_build(out, 7)
    for i in range(4):
        commit(plan, inputs, i)
    (tmp_path / "pad-000001.json").unlink()                      # crashed between tar and record
    (tmp_path / "pad-000002.json").write_text("{not json")       # damaged record
    with open(tmp_path / "pad-000003.tar", "ab") as f:           # tar changed after commit
        f.write(b"\0" * 512)
    (tmp_path / "pad-000004.error.json").write_text("{}")        # failed after retries
    commit(plan, inputs, 5)
    (tmp_path / "pad-000005.parquet").unlink()                   # index lost after commit
    states = reader.scan_shards(out)
    assert {i: s.state for i, s in states.items()} == {
        0: "committed", 1: "partial", 2: "damaged", 3: "damaged", 4: "failed", 5: "damaged", 6: "pending"}
    assert "not valid JSON" in states[2].problem and "bytes, not" in states[3].problem
    assert "its index is missing" in states[5].problem
    assert list(reader.committed_records(out)) == [0]


def test_a_record_of_another_plan_config_shard_or_input_list_is_not_committed(tmp_path):
    out = str(tmp_path / "b")
    plan, inputs = planned_build(out, 4)
    for i in range(4):
        commit(plan, inputs, i)
    assert list(reader.committed_records(out)) == [0, 1, 2, 3]
    other_plan, other_inputs = planned_build(str(tmp_path / "other"), 4)
    commit(other_plan, other_inputs, 0)                          # shard 0 of another plan, copied in
    for name in ("pad-000000.tar", "pad-000000.parquet", "pad-000000.json"):
        (tmp_path / "b" / name).write_bytes((tmp_path / "other" / name).read_bytes())
    record = json.loads((tmp_path / "b" / "pad-000001.json").read_text())
    (tmp_path / "b" / "pad-000001.json").write_text(json.dumps({**record, "config_hash": "seed7"}))
    (tmp_path / "b" / "pad-000002.json").write_text(json.dumps({**record, "shard": 1}))  # shard 1's record
    identity = plan_identity(plan, 3, inputs[2:3])               # shard 3 made from shard 2's inputs
    write_shard(out, 3, [_sample("k2")], {}, identity)
    states = reader.scan_shards(out)
    assert reader.committed_records(out) == {}
    assert "belongs to another plan" in states[0].problem
    assert "made with another config" in states[1].problem
    assert "its record is shard 1's" in states[2].problem
    assert "its inputs are not the ones the plan lists" in states[3].problem


def test_a_folder_without_a_plan_has_no_committed_shard_for_any_reader(tmp_path):
    write_shard(str(tmp_path), 0, [_sample("k0")], {}, {})
    with pytest.raises(PadError, match="no plan here"):
        reader.committed_shard_urls(str(tmp_path))


def test_samples_are_validated_on_read():
    bad = Sample("k", b"x", SampleRecord("k.jpg", [4, 3], "c", [], []))
    tar = build_tar([bad]).replace(b'"size":[4,3]', b'"size":[4,0]')
    with pytest.raises(RecordError, match="k.json: field 'size'"):
        list(reader.iter_tar_samples(tar, "pad-000000.tar"))


def test_plan_and_inputs_read_back(tmp_path):
    plan = Plan(str(tmp_path), "fp", "h", 2, 3, 2)
    inputs = [PlannedInput(f"{i}.jpg", "", f"/src/{i}.jpg", f"{i}_jpg") for i in range(3)]
    written = write_plan(plan, inputs)
    assert written.plan_id and written.shard_digests and len(written.shard_digests) == 2
    assert reader.load_plan(str(tmp_path)) == written
    assert reader.read_shard_inputs(plan, 1) == inputs[2:]
    with pytest.raises(PadError, match="no plan here"):
        reader.load_plan(str(tmp_path / "missing"))


def test_a_damaged_index_is_one_line_naming_the_file_and_the_redo(tmp_path):
    out = str(tmp_path)
    plan, inputs = planned_build(out, 2)
    commit(plan, inputs, 1)
    data = bytearray((tmp_path / "pad-000001.parquet").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "pad-000001.parquet").write_bytes(bytes(data))
    record = reader.committed_records(out)[1]  # same size: still committed; verify and the reads find it
    with pytest.raises(PadError, match=r"pad-000001.parquet: damaged parquet index .* --redo 1$"):
        reader.read_index(out, 1, record)
