"""The one commit rule, applied by `scan_shards` to every state a shard's files can be in."""

import pytest

from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset import reader
from pad_pipeline.dataset.records import Label, Plan, PlannedInput, RecordError, Sample, SampleRecord
from pad_pipeline.dataset.writer import build_tar, write_plan, write_shard


def _sample(key):
    return Sample(key, b"\xff\xd8" + key.encode(), SampleRecord(f"{key}.jpg", [4, 3], "c", ["a"],
                                                                [Label("a", [0, 0, 1, 1], 0.5, 0.5, 1, "0")]))


def test_states_of_every_kind(tmp_path):
    out = str(tmp_path)
    for i in range(4):
        write_shard(out, i, [_sample(f"k{i}")], {}, {})
    (tmp_path / "pad-000001.json").unlink()                      # crashed between tar and record
    (tmp_path / "pad-000002.json").write_text("{not json")       # damaged record
    with open(tmp_path / "pad-000003.tar", "ab") as f:           # tar changed after commit
        f.write(b"\0" * 512)
    (tmp_path / "pad-000004.error.json").write_text("{}")        # failed after retries
    states = reader.scan_shards(out, num_shards=6)
    assert {i: s.state for i, s in states.items()} == {
        0: "committed", 1: "partial", 2: "damaged", 3: "damaged", 4: "failed", 5: "pending"}
    assert "not valid JSON" in states[2].problem and "bytes, not" in states[3].problem
    assert list(reader.committed_records(out)) == [0]
    assert reader.is_committed(states[0].record, states[0].record.bytes)
    assert not reader.is_committed(states[0].record, None) and not reader.is_committed(None, 10)


def test_samples_are_validated_on_read():
    bad = Sample("k", b"x", SampleRecord("k.jpg", [4, 3], "c", [], []))
    tar = build_tar([bad]).replace(b'"size":[4,3]', b'"size":[4,0]')
    with pytest.raises(RecordError, match="k.json: field 'size'"):
        list(reader.iter_tar_samples(tar, "pad-000000.tar"))


def test_plan_and_inputs_read_back(tmp_path):
    plan = Plan(str(tmp_path), "fp", "h", 2, 3, 2)
    inputs = [PlannedInput(f"{i}.jpg", "", f"/src/{i}.jpg", f"{i}_jpg") for i in range(3)]
    write_plan(plan, inputs)
    assert reader.load_plan(str(tmp_path)) == plan
    assert reader.read_shard_inputs(plan, 1) == inputs[2:]
    with pytest.raises(PadError, match="no plan here"):
        reader.load_plan(str(tmp_path / "missing"))
