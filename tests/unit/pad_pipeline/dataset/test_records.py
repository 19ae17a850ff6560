"""Typed build records: JSON round trips in a fixed key order, and named errors on bad fields."""

import json

import pytest

from pad_pipeline.dataset.records import Label, Plan, PlannedInput, RecordError, SampleRecord, ShardRecord

LABEL = {"tag": "water", "bbox": [0.0, 182.6, 448.0, 335.7], "score": 0.41, "mask_score": 0.95, "area": 40211,
         "rle_mask": "k5d4L50000001"}
SAMPLE = {"image_id": "00000/00000030.jpg", "size": [448, 336], "caption": "a canyon", "tags": ["water", "sky"],
          "tag_scores": [0.9, 0.8], "labels": [LABEL]}


def test_sample_record_round_trip_keeps_bytes():
    raw = json.dumps(SAMPLE, ensure_ascii=False, separators=(",", ":")).encode()
    record = SampleRecord.decode(raw, "x.json")
    assert record.encode() == raw
    assert (record.width, record.height) == (448, 336) and record.labels[0] == Label(**LABEL)


def test_optional_and_unknown_fields():
    without_scores = {k: v for k, v in SAMPLE.items() if k != "tag_scores"}
    record = SampleRecord.from_json({**without_scores, "source": "laion"}, "x")
    assert record.tag_scores is None and record.extra == {"source": "laion"}
    assert list(record.to_json()) == ["image_id", "size", "caption", "tags", "labels", "source"]


@pytest.mark.parametrize("change, message", [
    ({"size": [448]}, "field 'size'"),
    ({"caption": 3}, "field 'caption' must be str"),
    ({"tags": ["a", 1]}, r"field 'tags\[1\]'"),
    ({"labels": [{**LABEL, "area": 1.5}]}, r"labels\[0\]: field 'area' must be int"),
    ({"labels": [{**LABEL, "bbox": [0, 0, 1]}]}, "4 numbers"),
    ({"labels": [{k: v for k, v in LABEL.items() if k != "rle_mask"}]}, "field 'rle_mask' is missing"),
    ({"labels": [{**LABEL, "score": True}]}, "got a bool"),
])
def test_bad_sample_fields_are_named(change, message):
    with pytest.raises(RecordError, match=message) as err:
        SampleRecord.from_json({**SAMPLE, **change}, "pad-000001.tar/k.json")
    assert str(err.value).startswith("pad-000001.tar/k.json")


def test_shard_record_round_trip_and_checks():
    record = ShardRecord(shard=2, tar="pad-000002.tar", sha256="ab", bytes=10, num_samples=1, num_regions=3,
                         failures={"b.jpg": "too_large: 20000x20000"}, num_inputs=2, config_hash="c",
                         failure_counts={"too_large": 1}, extra={"models": {"tag": {"name": "ram_plus"}}})
    back = ShardRecord.decode(record.encode(), "pad-000002.json")
    assert back == record and back.num_failures == 1 and json.loads(record.encode())["num_failures"] == 1
    data = json.loads(record.encode())
    with pytest.raises(RecordError, match="'num_failures' is 5"):
        ShardRecord.from_json({**data, "num_failures": 5}, "pad-000002.json")
    with pytest.raises(RecordError, match="pad-000002.json: field 'bytes' is missing"):
        ShardRecord.from_json({k: v for k, v in data.items() if k != "bytes"}, "pad-000002.json")
    with pytest.raises(RecordError, match="not valid JSON"):
        ShardRecord.decode(b"{", "pad-000002.json")


def test_plan_and_planned_input():
    plan = Plan("out", "fp", "hash", 4, 13, 4)
    expected = Plan("elsewhere", "fp", "hash", 4, 13, 4)
    assert Plan.from_json(json.loads(plan.encode()), "elsewhere", "plan.json") == expected
    inp = PlannedInput("a/b.jpg", "cap", "/x/a/b.jpg", "a_b_jpg")
    assert PlannedInput.from_json(inp.to_json(), "l") == inp
    with pytest.raises(RecordError, match="plan.json: field 'num_shards' is missing"):
        Plan.from_json({"source_fingerprint": "f", "config_hash": "h", "shard_size": 1, "num_items": 1}, "o",
                       "plan.json")
