"""`pad sft MANIFEST --check`: a generated file with one of each kind of bad sample; each is named by id."""

import json

import yaml

from pad_pipeline.cli import main


def _turns(*pairs):
    return [{"from": who, "value": value} for who, value in pairs]


def _write(tmp_path) -> tuple[str, dict[str, str]]:
    images = tmp_path / "images"
    (images / "coco").mkdir(parents=True)
    (images / "coco" / "ok.jpg").write_bytes(b"any bytes: --check does not decode")
    long = "word " * 400
    img = {"image": "coco/ok.jpg"}
    entries = [
        {"id": "good-image", **img, "conversations": _turns(("human", "<image>\nWhat?"), ("gpt", "A dog."))},
        {"id": "good-text", "conversations": _turns(("human", "Hi"), ("gpt", "Hello."), ("human", "?"), ("gpt", "!"))},
        "a string, not an entry",
        {"id": "empty", "conversations": []},
        {"id": "turn", "conversations": [{"from": "bot", "value": "x"}]},
        {"id": "order", "conversations": _turns(("human", "a"), ("human", "b"))},
        {"id": "blank", "conversations": _turns(("human", "a"), ("gpt", " "))},
        {"id": "count", **img, "conversations": _turns(("human", "no placeholder"), ("gpt", "b"))},
        {"id": "control", "conversations": _turns(("human", "a"), ("gpt", "b</s>c"))},
        {"id": "missing", "image": "coco/gone.jpg", "conversations": _turns(("human", "<image>"), ("gpt", "b"))},
        {"id": "late-image", **img, "conversations": _turns(("human", long), ("gpt", "ok"), ("human", "<image>"),
                                                           ("gpt", "b"))},
        {"id": "no-target", "conversations": _turns(("human", long), ("gpt", "b"))},
    ]
    (tmp_path / "c.json").write_text(json.dumps(entries))
    manifest = {"model": {"vision": {"checkpoint": "tiny-random"}, "llm": {"checkpoint": "tiny-random",
                                                                           "max_length": 400}},
                "data": {"path": str(tmp_path / "c.json"), "image_folder": str(images)},
                "train": {"output_dir": str(tmp_path / "run")}}
    (tmp_path / "sft.yaml").write_text(yaml.safe_dump(manifest))
    expected = {"#2": "not_an_object", "empty": "empty_conversation", "turn": "bad_turn", "order": "not_alternating",
                "blank": "empty_answer", "count": "image_token_count", "control": "control_text",
                "missing": "missing_image", "late-image": "image_truncated", "no-target": "no_target"}
    return str(tmp_path / "sft.yaml"), expected


def test_check_names_every_bad_sample_by_id_and_fails(tmp_path, capsys):
    manifest, expected = _write(tmp_path)
    assert main(["sft", manifest, "--check"]) == 1
    out, err = capsys.readouterr()
    listed = dict(line.split("\t")[:2] for line in out.splitlines())
    assert listed == expected
    assert "checked 12 entries" in err and "10 bad" in err and "per 100K" in err
    assert not (tmp_path / "run").exists()  # --check writes nothing


def test_check_passes_when_bad_samples_are_to_be_skipped(tmp_path, capsys):
    manifest, expected = _write(tmp_path)
    assert main(["sft", manifest, "--check", "--set", "data.on_bad_sample=skip"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(expected)
