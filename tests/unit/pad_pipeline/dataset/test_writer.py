import io
import tarfile

import webdataset as wds

from pad_pipeline.dataset.reader import committed_shard_urls, iter_committed_samples
from pad_pipeline.dataset.records import Label, Plan, PlannedInput, Sample, SampleRecord
from pad_pipeline.dataset.writer import FIXED_MTIME, plan_identity, write_plan, write_shard


def _samples():
    label = Label("a", [0.0, 0.0, 1.0, 1.0], 0.5, 0.9, 1, "01")
    return [Sample("k2", b"\xff\xd8two", SampleRecord("k2.jpg", [2, 2], "", ["a"], [label])),
            Sample("k1", b"\xff\xd8one", SampleRecord("k1.jpg", [2, 2], "", [], []))]


def test_tar_is_reproducible_sorted_and_fixed_metadata(tmp_path):
    r1 = write_shard(str(tmp_path / "a"), 0, _samples(), {"bad.jpg": "decode_error"}, {})
    r2 = write_shard(str(tmp_path / "b"), 0, list(reversed(_samples())), {"bad.jpg": "decode_error"}, {})
    t1 = (tmp_path / "a" / "pad-000000.tar").read_bytes()
    assert t1 == (tmp_path / "b" / "pad-000000.tar").read_bytes() and r1.sha256 == r2.sha256
    with tarfile.open(fileobj=io.BytesIO(t1)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["k1.jpg", "k1.json", "k2.jpg", "k2.json"]
    assert {m.mtime for m in members} == {FIXED_MTIME} and {m.uid for m in members} == {0}
    assert r1.num_samples == 2 and r1.num_regions == 1 and r1.failures == {"bad.jpg": "decode_error"}


def _planned(out):
    """A plan of 3 shards of the two inputs k1, k2 each; `write(i)` commits shard i with `_samples()`."""
    inputs = [PlannedInput(f"k{i}.jpg", "", f"/src/k{i}.jpg", f"k{i}") for i in (1, 2)] * 3
    plan = write_plan(Plan(out, "fp", "h", 2, 6, 3), inputs)
    return lambda i: write_shard(out, i, _samples(), {}, plan_identity(plan, i, inputs[2 * i:2 * i + 2]))


def test_only_committed_shards_are_read(tmp_path):
    out = str(tmp_path)
    write = _planned(out)
    write(0)
    write(1)
    (tmp_path / "pad-000001.json").unlink()  # crashed before its commit marker
    (tmp_path / "pad-000002.tar").write_bytes(b"partial")
    assert committed_shard_urls(out) == [str(tmp_path / "pad-000000.tar")]
    assert [s.key for s in iter_committed_samples(out)] == ["k1", "k2"]
    rows = list(wds.WebDataset(committed_shard_urls(out), shardshuffle=False))
    assert [r["__key__"] for r in rows] == ["k1", "k2"] and rows[0]["jpg"] == b"\xff\xd8one"


def test_record_must_match_tar_size(tmp_path):
    out = str(tmp_path)
    _planned(out)(0)
    with open(tmp_path / "pad-000000.tar", "ab") as f:
        f.write(b"\0" * 512)
    assert committed_shard_urls(out) == []


def test_object_store_urls_go_through_fsspec_without_renames():
    """A non-local fsspec URL (memory://, standing in for s3:// or gs://): same commit order and reads."""
    import fsspec

    out = "memory://pad-test-build"
    _planned(out)(0)
    fs = fsspec.filesystem("memory")
    assert sorted(p.rsplit("/", 1)[1] for p in fs.ls("/pad-test-build", detail=False)) == [
        "pad-000000.json", "pad-000000.parquet", "pad-000000.tar", "plan", "plan.json"]
    assert committed_shard_urls(out) == ["memory://pad-test-build/pad-000000.tar"]
    assert [s.key for s in iter_committed_samples(out)] == ["k1", "k2"]
    fs.rm("/pad-test-build", recursive=True)
