"""Odd inputs end as a named failure or a one-line error, never a traceback or a hang: undecodable file
names, special files, malformed or non-UTF-8 JSON, truncated or mislabelled tars, keys repeated inside a
tar, and every image format `image_dir` accepts also inside tars."""

import io
import json
import os
import tarfile
import threading

import pytest

from pad_pipeline.annotate.config import AnnotateConfig, SourceConfig
from pad_pipeline.annotate.plan import make_or_resume_plan
from pad_pipeline.annotate.shard_task import process_shard
from pad_pipeline.annotate.sources import fetch_bytes, list_items
from pad_pipeline.annotate.sources.base import IMAGE_EXTENSIONS, InputRefused
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.reader import read_shard_inputs

from .test_guard import _jpeg, no_annotations


def _bounded(fn, seconds=20):
    """Run `fn` in a thread; fail (instead of hanging the suite) when it does not return in time."""
    result = {}
    thread = threading.Thread(target=lambda: result.update(value=fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    return result["value"]


def test_undecodable_names_and_special_files_in_an_image_dir_are_named_failures(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    _jpeg(src / "good.jpg")
    with open(os.path.join(os.fsencode(src), b"caf\xe9.jpg"), "wb") as f:  # Latin-1 name: not UTF-8
        f.write((src / "good.jpg").read_bytes())
    os.mkfifo(src / "pipe.jpg")
    cfg = AnnotateConfig.model_validate({"source": {"kind": "image_dir", "path": str(src)},
                                         "output": {"shard_size": 10}})
    plan = _bounded(lambda: make_or_resume_plan(cfg, str(tmp_path / "out"), stream=io.StringIO()))
    assert [(i.image_id, i.refused) for i in read_shard_inputs(plan, 0)] == [
        ("caf\\xe9.jpg", "undecodable_name"), ("good.jpg", None), ("pipe.jpg", "not_a_file")]
    record = _bounded(lambda: process_shard(cfg, plan, 0, no_annotations).record)
    assert record.num_samples == 1 and record.failures == {"caf\\xe9.jpg": "undecodable_name",
                                                           "pipe.jpg": "not_a_file"}


def test_reads_are_bounded_and_refuse_what_is_not_a_regular_file(tmp_path):
    os.mkfifo(tmp_path / "fifo.jpg")
    (tmp_path / "big.jpg").write_bytes(b"x" * 1000)
    got = _bounded(lambda: fetch_bytes([str(tmp_path / "fifo.jpg"), str(tmp_path / "big.jpg"), str(tmp_path)],
                                       max_bytes=100))
    assert isinstance(got[str(tmp_path / "fifo.jpg")], InputRefused)
    assert got[str(tmp_path / "fifo.jpg")].reason == "not_a_file: special file"
    assert got[str(tmp_path)].reason == "not_a_file: folder"
    assert len(got[str(tmp_path / "big.jpg")]) == 101  # enough for intake to say too_large, no more


@pytest.mark.parametrize(("entries", "error"), [
    ([{"id": "0", "image": "a.jpg", "conversations": "a caption"}], r"entry 0: 'conversations' must be a list"),
    ([{"id": "0", "image": "a.jpg", "conversations": ["a caption"]}], r"entry 0: 'conversations' must be a list"),
    ([{"id": "0", "image": ["a.jpg"]}], r"entry 0: 'image' must be a path string, got list"),
])
def test_malformed_llava_entries_are_one_line_errors(tmp_path, entries, error):
    (tmp_path / "l.json").write_text(json.dumps(entries))
    with pytest.raises(PadError, match=error):
        list_items(SourceConfig(kind="llava_json", path=str(tmp_path / "l.json")))


def test_latin1_bytes_in_json_are_one_line_errors(tmp_path):
    (tmp_path / "l.json").write_bytes(b'[{"id": "0", "image": "caf\xe9.jpg", "conversations": []}]')
    with pytest.raises(PadError, match=r"l.json: not UTF-8 \(byte 0xe9"):
        list_items(SourceConfig(kind="llava_json", path=str(tmp_path / "l.json")))
    (tmp_path / "captions.jsonl").write_bytes(b'{"file": "a.jpg", "caption": "caf\xe9"}\n')
    with pytest.raises(PadError, match=r"captions.jsonl: not UTF-8 text \(byte 0xe9"):
        list_items(SourceConfig(kind="image_dir", path=str(tmp_path), captions=str(tmp_path / "captions.jsonl")))


def _tar(path, members, mode="w"):
    with tarfile.open(path, mode) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_truncated_and_mislabelled_tars_are_one_line_errors(tmp_path):
    whole = _tar(tmp_path / "t.tar.gz", [(f"{i}.jpg", os.urandom(5000)) for i in range(4)], "w:gz")
    (tmp_path / "cut.tar.gz").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    (tmp_path / "photo.tar").write_bytes(b"\xff\xd8\xff\xe0 a jpeg, not a tar" * 40)
    for name in ("cut.tar.gz", "photo.tar"):
        with pytest.raises(PadError, match=rf"{name}: cannot read this source tar \(.*\); is it truncated or not"):
            list_items(SourceConfig(kind="webdataset", path=str(tmp_path / name)))


def test_a_key_repeated_in_a_tar_keeps_both_images_and_every_format_is_listed(tmp_path):
    formats = [ext.lstrip(".") for ext in IMAGE_EXTENSIONS]
    members = [("a.jpg", b"first"), ("a.txt", b"first caption"), ("b.jpg", b"b"),
               ("a.jpg", b"second"), ("a.txt", b"second caption")]
    members += [(f"f{n}.{ext.upper() if n % 2 else ext}", ext.encode()) for n, ext in enumerate(formats)]
    _tar(tmp_path / "s.tar", members)
    items = list_items(SourceConfig(kind="webdataset", path=str(tmp_path / "s.tar")))
    got = fetch_bytes(it.location for it in items)
    by_id = {it.image_id: (it.caption, got[it.location]) for it in items}
    assert by_id["s/a"] == ("first caption", b"first") and by_id["s/a#2"] == ("second caption", b"second")
    assert {f"s/f{n}" for n in range(len(formats))} <= set(by_id) and len(items) == 3 + len(formats)
