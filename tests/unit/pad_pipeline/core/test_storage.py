"""storage: durable local writes (temporary name + rename), path joins, listings, and the same API on fsspec URLs."""

import os
import uuid

import pytest

from pad_pipeline.core import storage


@pytest.fixture
def memory_url():
    """A fresh folder on fsspec's process-wide in-memory file system, removed afterwards."""
    url = f"memory://pad-test-{uuid.uuid4().hex}"
    yield url
    fs, path = storage.filesystem(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def test_local_write_then_read_round_trips_and_creates_parent_folders(tmp_path):
    url = str(tmp_path / "a" / "b" / "pad-000000.json")
    storage.write_bytes(url, b"record")
    assert storage.read_bytes(url) == b"record"
    assert os.listdir(tmp_path / "a" / "b") == ["pad-000000.json"]  # no temporary file left behind


def test_local_write_replaces_an_existing_file(tmp_path):
    url = str(tmp_path / "f.bin")
    storage.write_bytes(url, b"old content")
    storage.write_bytes(url, b"new")
    assert storage.read_bytes(url) == b"new"
    assert os.listdir(tmp_path) == ["f.bin"]


@pytest.mark.parametrize("fails", ["fsync", "replace"])
def test_failed_local_write_leaves_no_file_under_the_final_name_and_no_tmp(tmp_path, monkeypatch, fails):
    url = str(tmp_path / "pad-000000.json")
    seen_tmp = []
    real_open = open

    def spying_open(path, *args, **kwargs):
        seen_tmp.append(str(path))
        return real_open(path, *args, **kwargs)

    def boom(*args, **kwargs):
        raise OSError(f"{fails} failed")

    monkeypatch.setattr("builtins.open", spying_open)
    monkeypatch.setattr(os, fails, boom)
    with pytest.raises(OSError, match=f"{fails} failed"):
        storage.write_bytes(url, b"x" * 1000)
    monkeypatch.undo()
    assert not os.path.exists(url)
    assert os.listdir(tmp_path) == []
    # The bytes went to a temporary name beside the final one, never to the final name itself.
    assert seen_tmp and all(p != url and os.path.dirname(p) == str(tmp_path) for p in seen_tmp)


def test_failed_overwrite_keeps_the_previous_complete_file(tmp_path, monkeypatch):
    url = str(tmp_path / "pad-000000.json")
    storage.write_bytes(url, b"committed")

    def boom(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        storage.write_bytes(url, b"half")
    monkeypatch.undo()
    assert storage.read_bytes(url) == b"committed"
    assert os.listdir(tmp_path) == ["pad-000000.json"]


def test_join_uses_the_os_separator_for_local_paths_and_slashes_for_urls():
    assert storage.join("out", "pad", "pad-000000.tar") == os.path.join("out", "pad", "pad-000000.tar")
    assert storage.join("s3://bucket/build", "plan.json") == "s3://bucket/build/plan.json"
    assert storage.join("memory://x/", "a", "b.json") == "memory://x/a/b.json"
    assert storage.join("hf://datasets/u/pad", "pad-000001.json") == "hf://datasets/u/pad/pad-000001.json"


def test_list_names_matches_the_pattern_returns_base_names_sorted(tmp_path):
    for name in ["pad-000010.json", "pad-000002.json", "pad-000002.tar", "plan.json", "pad-000001.json.tmp-ab12"]:
        (tmp_path / name).write_bytes(b"")
    assert storage.list_names(str(tmp_path), "pad-*.json") == ["pad-000002.json", "pad-000010.json"]
    assert storage.list_names(str(tmp_path), "*.tar") == ["pad-000002.tar"]
    assert storage.list_names(str(tmp_path) + "/", "plan.json") == ["plan.json"]


def test_list_names_of_a_missing_folder_is_empty(tmp_path):
    assert storage.list_names(str(tmp_path / "nope"), "*") == []


def test_exists_size_remove_on_local_paths(tmp_path):
    url = str(tmp_path / "f.bin")
    assert not storage.exists(url)
    storage.write_bytes(url, b"12345")
    assert storage.exists(url)
    assert storage.size(url) == 5
    storage.remove(url)
    assert not storage.exists(url)
    storage.remove(url)  # removing what is not there is not an error


def test_makedirs_is_idempotent(tmp_path):
    url = str(tmp_path / "x" / "y")
    storage.makedirs(url)
    storage.makedirs(url)
    assert os.path.isdir(url)


def test_filesystem_gives_the_path_inside_the_file_system(memory_url):
    fs, path = storage.filesystem(storage.join(memory_url, "plan.json"))
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    assert "memory" in protocols
    assert path.endswith("/plan.json") and "://" not in path


def test_same_api_on_a_memory_url(memory_url):
    names = ["pad-000001.json", "pad-000000.json", "pad-000000.tar", "plan.json"]
    for i, name in enumerate(names):
        storage.write_bytes(storage.join(memory_url, name), bytes(i + 1))
    tar = storage.join(memory_url, "pad-000000.tar")
    assert storage.read_bytes(tar) == bytes(3)
    assert storage.exists(tar) and storage.size(tar) == 3
    assert storage.list_names(memory_url, "pad-*.json") == ["pad-000000.json", "pad-000001.json"]
    assert storage.list_names(memory_url, "*") == sorted(names)
    storage.write_bytes(tar, b"replaced")
    assert storage.read_bytes(tar) == b"replaced"
    storage.remove(tar)
    assert not storage.exists(tar)
    storage.remove(tar)
    assert storage.list_names(memory_url, "*.tar") == []


def test_list_names_of_a_missing_memory_folder_is_empty(memory_url):
    assert storage.list_names(storage.join(memory_url, "missing"), "*") == []
