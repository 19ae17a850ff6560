"""WebDataset tar sources at scale: byte-range index at plan time, ranged reads, compressed tars kept in
one shard, and resumes decided from sizes and stamps without opening a tar."""

import io
import os
import tarfile
from collections import Counter

import pytest
from fsspec.implementations.local import LocalFileSystem

from pad_pipeline.annotate.config import AnnotateConfig, SourceConfig
from pad_pipeline.annotate.plan import annotation_config_hash, make_or_resume_plan, source_fingerprint
from pad_pipeline.annotate.sources import base, fetch_bytes, list_items
from pad_pipeline.annotate.sources import webdataset_tars as wt
from pad_pipeline.annotate.sources.base import SourceItem, parse_tar_location, without_range
from pad_pipeline.core.config import dump_resolved
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.keys import unique_keys
from pad_pipeline.dataset.layout import BuildLayout
from pad_pipeline.dataset.reader import load_plan, load_source_index, read_shard_inputs
from pad_pipeline.dataset.records import Plan, PlannedInput
from pad_pipeline.dataset.writer import plan_identity, write_plan, write_shard


def _write_tar(path, keys, mode="w", fmt=tarfile.USTAR_FORMAT, seed=0):
    with tarfile.open(path, mode, format=fmt) as tar:
        for n, key in enumerate(keys):
            for ext, data in ((".jpg", os.urandom(300 + 97 * n + seed)), (".txt", f"caption {key}".encode())):
                info = tarfile.TarInfo(key + ext)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return str(path)


def _members(path):
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


@pytest.fixture
def reads(monkeypatch):
    """Every local open and ranged read, as (basename, kind, bytes asked for)."""
    log = []
    real_open, real_cat = LocalFileSystem._open, LocalFileSystem.cat_file

    def _open(self, path, *args, **kwargs):
        log.append((os.path.basename(path), "open", None))
        return real_open(self, path, *args, **kwargs)

    def cat_file(self, path, start=None, end=None, **kwargs):
        log.append((os.path.basename(path), "range", None if start is None else end - start))
        return real_cat(self, path, start, end, **kwargs)

    monkeypatch.setattr(LocalFileSystem, "_open", _open)
    monkeypatch.setattr(LocalFileSystem, "cat_file", cat_file)
    return log


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
@pytest.mark.parametrize("gap, reads_expected", [(base.MERGE_GAP, 1), (0, 4)])
def test_offsets_index_members_and_ranges_read_what_tarfile_reads(tmp_path, reads, monkeypatch, fmt, gap,
                                                                  reads_expected):
    keys = ["a", "sub/b", "x" * 120, "ünï"]  # a folder, a name past ustar's 100 bytes, a non-ASCII name
    url = _write_tar(tmp_path / "00000.tar", keys, fmt=fmt)
    items = list_items(SourceConfig(kind="webdataset", path=url))
    members = [parse_tar_location(it.location) for it in items]
    assert [m.member for m in members] == [k + ".jpg" for k in keys]
    assert all(m.offset is not None and m.url == url for m in members)
    assert [it.caption for it in items] == [f"caption {k}" for k in keys]
    monkeypatch.setattr(base, "MERGE_GAP", gap)
    reads.clear()
    got = fetch_bytes(it.location for it in items)
    expected = _members(url)
    assert {it.location: expected[m.member] for it, m in zip(items, members, strict=True)} == got
    assert [kind for _, kind, _ in reads].count("range") == reads_expected


def test_a_tar_changed_after_planning_is_a_named_read_error(tmp_path):
    url = _write_tar(tmp_path / "00000.tar", ["a", "b"])
    items = list_items(SourceConfig(kind="webdataset", path=url))
    first = _members(url)["a.jpg"]
    with open(url, "r+b") as f:
        f.truncate(parse_tar_location(items[1].location).offset + 10)
    got = fetch_bytes(it.location for it in items)
    assert got[items[0].location] == first
    assert isinstance(got[items[1].location], EOFError) and "changed since" in str(got[items[1].location])


def _cfg(pattern, shard_size):
    return AnnotateConfig(source={"kind": "webdataset", "path": pattern}, output={"shard_size": shard_size})


def test_compressed_tars_are_read_once_at_plan_and_once_by_one_shard(tmp_path, reads):
    for n, size in enumerate([2, 2, 5]):
        _write_tar(tmp_path / f"{n:05d}.tar.gz", [f"{n}{i}" for i in range(size)], mode="w:gz")
    _write_tar(tmp_path / "00003.tar", ["30", "31", "32"])
    pattern = str(tmp_path / "{00000.tar.gz,00001.tar.gz,00002.tar.gz,00003.tar}")
    plan = make_or_resume_plan(_cfg(pattern, 4), str(tmp_path / "out"))
    planning = Counter(name for name, kind, _ in reads if kind == "open" and ".tar" in name)
    assert planning["00000.tar.gz"] == planning["00001.tar.gz"] == planning["00002.tar.gz"] == 1  # no probe
    shards = [read_shard_inputs(plan, i) for i in range(plan.num_shards)]
    assert [len(s) for s in shards] == [4, 5, 3]
    reads.clear()
    for shard in shards:
        assert not any(isinstance(v, Exception) for v in fetch_bytes(inp.location for inp in shard).values())
    opened = Counter(name for name, kind, _ in reads if kind == "open")
    assert opened["00000.tar.gz"] == opened["00001.tar.gz"] == opened["00002.tar.gz"] == 1


def _source_reads(reads):
    return [r for r in reads if r[0].startswith("0000")]


def _planned(tmp_path, shard_size=2):
    _write_tar(tmp_path / "00000.tar", ["a", "b", "c", "d"])
    _write_tar(tmp_path / "00001.tar.gz", ["e", "f", "g"], mode="w:gz")
    cfg = _cfg(str(tmp_path / "{00000.tar,00001.tar.gz}"), shard_size)
    out = str(tmp_path / "out")
    return cfg, out, make_or_resume_plan(cfg, out)


def _commit_shard_0(cfg, out, plan):
    dump_resolved(cfg, BuildLayout(out).config)
    inputs = read_shard_inputs(plan, 0)
    write_shard(out, 0, [], {i.image_id: "decode_error" for i in inputs}, plan_identity(plan, 0, inputs))


def test_resume_of_an_unchanged_source_opens_no_tar(tmp_path, reads, capsys):
    cfg, out, plan = _planned(tmp_path)
    assert load_source_index(out).source_fingerprint == plan.source_fingerprint
    reads.clear()
    assert make_or_resume_plan(cfg, out) == plan
    assert not _source_reads(reads)
    assert "not listed again" in capsys.readouterr().err
    _commit_shard_0(cfg, out, plan)
    reseeded = cfg.model_copy(update={"models": cfg.models.model_copy(update={"seed": 5})})
    with pytest.raises(PadError, match="annotation config.*changed: models.seed: 0 then, 5 now"):
        make_or_resume_plan(reseeded, out)  # refused without listing the source
    assert not _source_reads(reads)


def test_a_changed_tar_is_detected_on_resume(tmp_path, reads, capsys):
    cfg, out, plan = _planned(tmp_path)
    _commit_shard_0(cfg, out, plan)
    os.utime(tmp_path / "00001.tar.gz", (1, 1))  # same bytes, new mtime: listed again, same source
    reads.clear()
    assert make_or_resume_plan(cfg, out) == plan
    assert "00001.tar.gz" in {name for name, _, _ in reads}
    assert "when planned, mtime=1" in capsys.readouterr().err
    reads.clear()
    make_or_resume_plan(cfg, out)  # the refreshed index vouches for the plan again
    assert not _source_reads(reads)
    _write_tar(tmp_path / "00000.tar", ["a", "b", "c", "d"], seed=1)  # rewritten: other sizes and offsets
    with pytest.raises(PadError, match="a different source"):
        make_or_resume_plan(cfg, out)
    assert "00000.tar: mtime=" in capsys.readouterr().err


def test_a_plan_from_before_byte_ranges_resumes_as_planned(tmp_path):
    cfg, out, new = _planned(tmp_path)
    assert new.num_shards == 3  # a b | c d | e f g: the .tar.gz stays whole
    items = [SourceItem(i.image_id, i.caption, without_range(i.location)) for i in list_items(cfg.source)]
    old = Plan(out, source_fingerprint("webdataset", items, ranges=False), annotation_config_hash(cfg), 2, 7, 4)
    old = write_plan(old, [PlannedInput(it.image_id, it.caption, it.location, key)  # cut every 2: ab cd ef g
                           for it, key in zip(items, unique_keys(it.image_id for it in items), strict=True)])
    os.remove(BuildLayout(out).source_index)
    _commit_shard_0(cfg, out, old)
    assert make_or_resume_plan(cfg, out) == old
    assert load_plan(out) == old and load_source_index(out).source_fingerprint == old.source_fingerprint
    shard = read_shard_inputs(old, 0)
    assert [parse_tar_location(i.location).offset for i in shard] == [None, None]
    assert fetch_bytes([shard[0].location])[shard[0].location] == _members(tmp_path / "00000.tar")["a.jpg"]
    last = read_shard_inputs(old, 3)[0].location
    assert fetch_bytes([last])[last] == _members(tmp_path / "00001.tar.gz")["g.jpg"]


def test_source_files_from_one_folder_listing_equal_info_calls(tmp_path, monkeypatch):
    pattern = str(tmp_path / "*.tar")
    for n in range(3):
        _write_tar(tmp_path / f"{n:05d}.tar", [str(n)])
    one_by_one = wt.source_files(SourceConfig(kind="webdataset", path=pattern))
    monkeypatch.setattr(wt, "LIST_FOLDER_FROM", 2)
    assert wt.source_files(SourceConfig(kind="webdataset", path=pattern)) == one_by_one
    assert [f.size for f in one_by_one] == [os.path.getsize(tmp_path / f"{n:05d}.tar") for n in range(3)]
    assert all(f.stamp.startswith("mtime=") for f in one_by_one)
    assert wt.file_stamp({"size": 3, "ETag": '"abc"', "mtime": 1.0}) == 'ETag="abc"'
    assert wt.file_stamp({"size": 3}) is None
    assert wt.source_files(SourceConfig(kind="webdataset", path=str(tmp_path / "missing.tar"))) is None
