"""The one-time index: byte offsets of every entry of a JSON array (UTF-8, any chunking), the checks per
entry, the parquet beside the run, and refusal of an index built from another file."""

import json

import pytest

from pad_pipeline.core.errors import PadError
from trainer.data.chat.index import (
    build_index,
    index_matches,
    iter_json_array,
    load_index,
    read_entry,
)


def _entries(n: int) -> list[dict]:
    out = []
    for i in range(n):
        conv = [{"from": "human", "value": ("<image>\n" if i % 2 else "") + "Qué é isto? ✓ " * (i % 3)},
                {"from": "gpt", "value": f"answer {i} ünïcode"}]
        entry = {"id": f"e{i}", "conversations": conv}
        if i % 2:
            entry["image"] = f"coco/{i}.jpg"
        out.append(entry)
    return out


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_offsets_point_at_each_entry_for_any_chunk_size(tmp_path, chunk):
    entries = _entries(25)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(entries, ensure_ascii=False, indent=2), encoding="utf-8")
    raw = path.read_bytes()
    found = list(iter_json_array(str(path), chunk=chunk))
    assert [v for _, _, v in found] == entries
    assert all(json.loads(raw[o:o + n].decode("utf-8")) == v for o, n, v in found)


@pytest.mark.parametrize(("text", "error"), [
    ('{"id": 1}', "not a JSON array"),
    ('[{"id": 1} {"id": 2}]', "expected ',' or ']'"),
    ('[{"id": 1}, {"id": ', "malformed JSON at byte"),
])
def test_a_malformed_file_is_a_one_line_error(tmp_path, text, error):
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(PadError, match=error):
        list(iter_json_array(str(path), chunk=4))


def test_a_latin1_byte_is_a_one_line_error_naming_its_offset(tmp_path):
    path = tmp_path / "c.json"
    path.write_bytes(b'[{"id": "a", "conversations": []}, {"id": "caf\xe9", "conversations": []}]')
    with pytest.raises(PadError, match=r"c.json: not UTF-8 at byte 46 \(0xe9\)"):
        list(iter_json_array(str(path), chunk=8))


def test_the_index_records_offsets_modality_lengths_and_bad_entries(tmp_path):
    images = tmp_path / "images" / "coco"
    images.mkdir(parents=True)
    entries = _entries(6)
    for i in (1, 3):  # e5's image is missing
        (images / f"{i}.jpg").write_bytes(b"jpeg")
    entries[2]["conversations"].append({"from": "human", "value": "unanswered"})
    src = tmp_path / "c.json"
    src.write_text(json.dumps(entries))
    out = str(tmp_path / "run" / "data-index.parquet")
    summary = build_index(str(src), str(tmp_path / "images"), out)
    assert summary.entries == 6
    assert [(b.id, b.reason) for b in summary.bad] == [("e2", "not_alternating"), ("e5", "missing_image")]
    index = load_index(out)
    assert index.valid.tolist() == [True, True, False, True, True, False]
    assert index.has_image.tolist() == [False, True, False, True, False, False]
    assert index.modality_length[1] > 0 and index.modality_length[0] < 0
    with open(src, "rb") as f:
        assert read_entry(f, index, 4) == entries[4]
    assert index_matches(out, str(src))
    src.write_text(json.dumps(entries[:5]))
    assert not index_matches(out, str(src))
