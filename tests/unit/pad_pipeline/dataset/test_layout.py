"""Every file name of a build comes from `dataset.layout`, and names parse back to their shard."""

import subprocess
from pathlib import Path

import pytest

from pad_pipeline.dataset import layout

ROOT = Path(__file__).resolve().parents[4]


def test_names_follow_the_documented_layout():
    assert layout.tar_name(3) == "pad-000003.tar" and layout.index_name(3) == "pad-000003.parquet"
    assert layout.record_name(3) == "pad-000003.json" and layout.error_name(3) == "pad-000003.error.json"
    assert layout.plan_inputs_name(12) == "plan/pad-000012.jsonl"
    assert layout.shard_files(0) == ["pad-000000.tar", "pad-000000.parquet", "pad-000000.json"]
    with pytest.raises(ValueError):
        layout.shard_name(-1)


def test_names_parse_back():
    assert layout.parse_shard_file("pad-000042.error.json") == (42, "error.json")
    assert layout.shard_index("pad-000042.json") == 42
    assert layout.shard_index("pad-000042.error.json") is None  # not a record
    assert layout.shard_index("pad-000042.tar", "tar") == 42
    for other in ("pad-42.json", "pad-000042.json.tmp-1234", "plan.json", "pad-000042.jsonl"):
        assert layout.parse_shard_file(other) is None


def test_urls_for_local_folders_and_object_stores():
    local = layout.BuildLayout("/data/out")
    assert local.tar(1) == "/data/out/pad-000001.tar" and local.plan_inputs(1) == "/data/out/plan/pad-000001.jsonl"
    remote = layout.BuildLayout("s3://bucket/pad")
    assert remote.record(7) == "s3://bucket/pad/pad-000007.json" and remote.plan == "s3://bucket/pad/plan.json"
    assert remote.config == "s3://bucket/pad/config.yaml" and remote.error(7).endswith("pad-000007.error.json")


def test_no_other_module_spells_the_shard_name():
    found = subprocess.run(["grep", "-rln", "--include=*.py", "pad-{", "pad_pipeline", "trainer"], cwd=ROOT,
                           capture_output=True, text=True).stdout.split()
    assert found == ["pad_pipeline/dataset/layout.py"]
