"""Strict loading of official-layout RAM / RAM++ checkpoints (written by the test from tiny models)."""

import math
import tempfile

import pytest
import torch
from safetensors.torch import save_file

from pad_pipeline.annotate.models.ram.checkpoint import (
    load_official_state_dict,
    official_to_ours,
    ours_to_official,
    read_official_checkpoint,
    to_official_state_dict,
)
from pad_pipeline.annotate.models.ram.tiny import tiny_ram
from pad_pipeline.core.errors import PadError

PIXELS = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))

# Keys an official RAM file holds that we drop by name: caption branch, deleted head parts, Swin buffers.
SKIPPABLE = {
    "text_decoder.bert.embeddings.word_embeddings.weight": torch.zeros(3, 2),
    "tag_encoder.encoder.layer.0.crossattention.self.query.weight": torch.zeros(2, 2),
    "tagging_head.encoder.layer.0.attention.self.query.weight": torch.zeros(2, 2),
    "visual_encoder.layers.0.blocks.1.attn_mask": torch.zeros(16, 16, 16),
    "visual_encoder.layers.0.blocks.0.attn.relative_position_index": torch.zeros(16, 16, dtype=torch.long),
}


def _official(model):
    return to_official_state_dict(model.state_dict())


@pytest.mark.parametrize("plus", [False, True])
def test_round_trip_through_the_official_layout_reproduces_logits_exactly(tmp_path, plus):
    source = tiny_ram(9, 64, plus, seed=1)
    path = tmp_path / "ram.pth"
    torch.save({"model": {**_official(source), **SKIPPABLE}, "epoch": 3}, path)

    state, sha = read_official_checkpoint(str(path))
    target = tiny_ram(9, 64, plus, seed=2)
    report = load_official_state_dict(target, state, str(path))

    assert report.skipped == sorted(SKIPPABLE)
    assert report.loaded == len(source.state_dict())
    assert report.summary() == {"loaded_keys": len(source.state_dict()), "skipped_keys": len(SKIPPABLE),
                                "defaulted_keys": []}
    assert report.lines() == []
    assert len(sha) == 64
    with torch.no_grad():
        assert torch.equal(target(PIXELS), source(PIXELS))


def test_safetensors_file_in_the_official_layout_loads_too(tmp_path):
    source = tiny_ram(4, 64, True, seed=5)
    path = tmp_path / "ram_plus.safetensors"
    save_file({k: v.contiguous() for k, v in _official(source).items()}, str(path))
    target = tiny_ram(4, 64, True, seed=6)
    load_official_state_dict(target, read_official_checkpoint(str(path))[0], str(path))
    with torch.no_grad():
        assert torch.equal(target(PIXELS), source(PIXELS))


def test_official_names_map_to_the_modules_that_play_their_role():
    # Same-shaped pairs a wrong map could swap unnoticed by shape checks alone.
    model = tiny_ram(3, 64, True, seed=0)
    params = dict(model.named_parameters())
    layer = model.tagging_head.layers[0]
    expected = {
        "tagging_head.encoder.layer.0.crossattention.self.query.weight": layer.cross_attn.query.weight,
        "tagging_head.encoder.layer.0.crossattention.output.dense.weight": layer.cross_attn.out.weight,
        "tagging_head.encoder.layer.0.crossattention.output.LayerNorm.weight": layer.norm1.weight,
        "tagging_head.encoder.layer.0.output.LayerNorm.weight": layer.norm2.weight,
        "tagging_head.encoder.layer.0.intermediate.dense.bias": layer.ffn.fc1.bias,
        "visual_encoder.layers.1.blocks.0.norm2.bias": model.image_encoder.stages[1].blocks[0].norm2.bias,
        "visual_encoder.layers.0.downsample.reduction.weight":
            model.image_encoder.stages[0].downsample.reduction.weight,
        "visual_encoder.norm.weight": model.image_encoder.norm.weight,
        "wordvec_proj.weight": model.label_proj.weight,
        "fc.bias": model.classifier.bias,
        "reweight_scale": model.reweight_scale,
    }
    for official, param in expected.items():
        ours = official_to_ours(official)
        assert params[ours] is param, official
        assert ours_to_official(ours) == official
    legacy = "vision_multi.encoder.layer.1.output.dense.weight"
    assert official_to_ours(legacy) == "tagging_head.layers.1.ffn.fc2.weight"
    assert official_to_ours("text_decoder.cls.predictions.bias") is None


def test_an_extra_key_is_refused_and_named():
    model = tiny_ram(3, 64, False, seed=0)
    state = {**_official(model), "visual_encoder.head.weight": torch.zeros(2, 2)}
    with pytest.raises(PadError, match=r"unexpected keys: visual_encoder\.head\.weight"):
        load_official_state_dict(tiny_ram(3, 64, False, seed=1), state, "x.pth")


def test_a_parameter_given_twice_under_legacy_and_current_names_is_refused():
    model = tiny_ram(3, 64, False, seed=0)
    state = _official(model)
    state["vision_multi.encoder.layer.0.output.dense.bias"] = torch.zeros_like(
        state["tagging_head.encoder.layer.0.output.dense.bias"])
    with pytest.raises(PadError, match=r"unexpected keys: .*output\.dense\.bias"):
        load_official_state_dict(tiny_ram(3, 64, False, seed=1), state, "x.pth")


def test_a_missing_key_is_refused_and_named():
    model = tiny_ram(3, 64, False, seed=0)
    state = _official(model)
    del state["tagging_head.encoder.layer.0.output.LayerNorm.bias"]
    named = r"x\.pth: .*missing keys: tagging_head\.encoder\.layer\.0\.output\.LayerNorm\.bias"
    with pytest.raises(PadError, match=named):
        load_official_state_dict(tiny_ram(3, 64, False, seed=1), state, "x.pth")


def test_a_wrong_vocabulary_size_is_a_named_shape_mismatch():
    state = _official(tiny_ram(5, 64, True, seed=0))
    with pytest.raises(PadError, match=r"shape mismatch: label_embed \(15, 16\) != \(12, 16\)"):
        load_official_state_dict(tiny_ram(4, 64, True, seed=0), state, "x.pth")


def test_ram_file_for_a_ram_plus_model_says_which_kind_to_use():
    state = _official(tiny_ram(3, 64, False, seed=0))  # one label embedding per tag, no reweight_scale
    with pytest.raises(PadError, match=r"shape mismatch: label_embed \(3, 16\) != \(9, 16\) "
                                       r"\(a RAM checkpoint\? use models\.tagger\.kind=ram\)$"):
        load_official_state_dict(tiny_ram(3, 64, True, seed=0), state, "x.pth")


@pytest.mark.parametrize("drop", [(), ("reweight_scale",)])
def test_ram_plus_file_for_a_ram_model_says_which_kind_to_use(drop):
    state = {k: v for k, v in _official(tiny_ram(3, 64, True, seed=0)).items() if k not in drop}
    with pytest.raises(PadError, match=r"\(a RAM\+\+ checkpoint\? use models\.tagger\.kind=ram_plus\)$"):
        load_official_state_dict(tiny_ram(3, 64, False, seed=0), state, "x.pth")


def test_a_tag_list_of_another_length_is_named_in_the_hint():
    state = _official(tiny_ram(5, 64, True, seed=0))
    with pytest.raises(PadError, match=r"label_embed has 15 rows for 4 tags: use the tag list of this checkpoint"):
        load_official_state_dict(tiny_ram(4, 64, True, seed=0), state, "x.pth")


def test_logit_scale_of_the_released_file_is_skipped_by_name_only():
    source = tiny_ram(3, 64, True, seed=1)
    target = tiny_ram(3, 64, True, seed=2)
    report = load_official_state_dict(target, {**_official(source), "logit_scale": torch.tensor(4.6)}, "x.pth")
    assert report.skipped == ["logit_scale"] and report.defaulted == {}
    with torch.no_grad():
        assert torch.equal(target(PIXELS), source(PIXELS))
    elsewhere = {**_official(source), "tagging_head.logit_scale": torch.tensor(4.6)}
    with pytest.raises(PadError, match=r"unexpected keys: tagging_head\.logit_scale"):
        load_official_state_dict(target, elsewhere, "x.pth")


def test_a_missing_reweight_scale_keeps_the_official_initial_value_and_says_so(caplog):
    source = tiny_ram(3, 64, True, seed=1)
    with torch.no_grad():
        source.reweight_scale.fill_(math.log(1 / 0.07))  # what the official strict=False load leaves
    state = {k: v for k, v in _official(source).items() if k != "reweight_scale"}
    target = tiny_ram(3, 64, True, seed=2)
    with torch.no_grad():
        target.reweight_scale.fill_(1.0)  # not left to the constructor: the loader sets it
    report = load_official_state_dict(target, state, "x.pth")
    assert target.reweight_scale.item() == pytest.approx(math.log(1 / 0.07), abs=1e-6)
    assert report.defaulted == {"reweight_scale": math.log(1 / 0.07)}
    assert report.summary()["defaulted_keys"] == ["reweight_scale"]
    assert report.lines() == ["reweight_scale not in the file: kept the official initial value log(1/0.07) = 2.659260"]
    assert "x.pth: reweight_scale not in the file" in caplog.text
    with torch.no_grad():
        assert torch.equal(target(PIXELS), source(PIXELS))
    del state["fc.bias"]  # any other missing key is still refused
    with pytest.raises(PadError, match=r"missing keys: fc\.bias$"):
        load_official_state_dict(target, state, "x.pth")


def test_checkpoints_are_memory_mapped_weights_only(tmp_path, monkeypatch):
    calls = []
    original = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    path = tmp_path / "ram.pth"
    original_save = torch.save
    original_save({"model": _official(tiny_ram(3, 64, False, seed=0))}, path)
    read_official_checkpoint(str(path))
    assert calls == [{"map_location": "cpu", "weights_only": True, "mmap": True}]
    calls.clear()
    original_save({"model": _official(tiny_ram(3, 64, False, seed=0))}, path, _use_new_zipfile_serialization=False)
    state, _ = read_official_checkpoint(str(path))  # the legacy format cannot be mapped: read instead
    assert [c.get("mmap") for c in calls] == [True, None] and "fc.bias" in state


def test_a_remote_file_is_mapped_from_a_temporary_local_copy(tmp_path, monkeypatch):
    import fsspec

    local = tmp_path / "ram.pth"
    torch.save({"model": _official(tiny_ram(3, 64, False, seed=0))}, local)
    fs = fsspec.filesystem("memory")
    fs.pipe("/ckpt/ram.pth", local.read_bytes())
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    state, sha = read_official_checkpoint("memory://ckpt/ram.pth")
    assert sha == read_official_checkpoint(str(local))[1] and torch.equal(state["fc.bias"], _official(
        tiny_ram(3, 64, False, seed=0))["fc.bias"])
    assert list((tmp_path / "tmp").iterdir()) == []  # the copy is gone once mapped
    with pytest.raises(PadError, match=r"memory://ckpt/nope\.pth not found"):
        read_official_checkpoint("memory://ckpt/nope.pth")


def test_pickled_objects_are_refused_without_running_them(tmp_path):
    path = tmp_path / "evil.pth"
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"model": {"label_embed": torch.zeros(1)}, "extra": Payload()}, path)
    with pytest.raises(PadError, match="weights-only"):
        read_official_checkpoint(str(path))
    assert not marker.exists()


def test_missing_file_and_non_state_dict_are_clear_errors(tmp_path):
    with pytest.raises(PadError, match=r"models\.tagger\.checkpoint.*not found"):
        read_official_checkpoint(str(tmp_path / "nope.pth"))
    with pytest.raises(PadError, match="cannot read"):
        read_official_checkpoint(str(tmp_path))
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(PadError, match="no state dict"):
        read_official_checkpoint(str(path))
