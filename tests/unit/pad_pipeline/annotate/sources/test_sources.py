import io
import json
import tarfile

import pytest

from pad_pipeline.annotate.config import SourceConfig
from pad_pipeline.annotate.sources import fetch_bytes, list_items
from pad_pipeline.core.errors import PadError


def test_llava_json(tmp_path):
    (tmp_path / "images" / "00000").mkdir(parents=True)
    (tmp_path / "images" / "00000" / "00000030.jpg").write_bytes(b"abc")
    entries = [{"id": "00000030", "image": "00000/00000030.jpg", "conversations": [
        {"from": "human", "value": "<image>\nRender a clear and concise summary of the photo."},
        {"from": "gpt", "value": "a canyon wall reflects the water"}]}]
    (tmp_path / "blip.json").write_text(json.dumps(entries))
    items = list_items(SourceConfig(kind="llava_json", path=str(tmp_path / "blip.json"),
                                    image_root=str(tmp_path / "images")))
    assert [(i.image_id, i.caption) for i in items] == [("00000/00000030.jpg", "a canyon wall reflects the water")]
    assert fetch_bytes([items[0].location])[items[0].location] == b"abc"


def test_llava_json_errors_name_the_file(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(PadError, match="bad.json"):
        list_items(SourceConfig(kind="llava_json", path=str(tmp_path / "bad.json")))


def test_image_dir_with_captions_sorted(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ["b.jpg", "a.png", "sub/c.JPG", "notes.txt", ".hidden.jpg"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "caps.jsonl").write_text(json.dumps({"file": "sub/c.JPG", "caption": "see"}) + "\n")
    items = list_items(SourceConfig(kind="image_dir", path=str(tmp_path), captions=str(tmp_path / "caps.jsonl")))
    assert [i.image_id for i in items] == ["a.png", "b.jpg", "sub/c.JPG"]
    assert items[2].caption == "see"
    assert list_items(SourceConfig(kind="image_dir", path=str(tmp_path), limit=2))[-1].image_id == "b.jpg"


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_webdataset_tars_brace_pattern(tmp_path):
    for n in range(2):
        with tarfile.open(tmp_path / f"{n:05d}.tar", "w") as tar:
            _add(tar, f"{n}001.jpg", f"img{n}a".encode())
            _add(tar, f"{n}001.txt", b"caption from txt")
            _add(tar, f"{n}002.jpg", f"img{n}b".encode())
            _add(tar, f"{n}002.json", json.dumps({"caption": "caption from json"}).encode())
    items = list_items(SourceConfig(kind="webdataset", path=str(tmp_path / "{00000..00001}.tar")))
    assert [i.image_id for i in items] == ["00000/0001", "00000/0002", "00001/1001", "00001/1002"]
    assert [i.caption for i in items[:2]] == ["caption from txt", "caption from json"]
    got = fetch_bytes([i.location for i in items] + ["/no/such/file.jpg"])
    assert got[items[3].location] == b"img1b"
    assert isinstance(got["/no/such/file.jpg"], Exception)
