"""Loud on partial loads: an export a loader would not fill completely is refused in one line, and nothing
is left that looks finished (neither OUT nor OUT.partial)."""

import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from pad_pipeline.core.errors import PadError
from trainer.config.sections import ModelConfig
from trainer.export.check import check_hf_export
from trainer.export.keys import from_published
from trainer.export.spec import ExportSpec
from trainer.export.write import write_format
from trainer.models.loading import build_vlm


@pytest.fixture(scope="module")
def tiny():
    cfg = ModelConfig.model_validate({"vision": {"checkpoint": "tiny-random"}, "projector": {"kind": "linear"},
                                      "llm": {"checkpoint": "tiny-random", "gradient_checkpointing": False}})
    spec = ExportSpec(stage=2, model=cfg, image_aspect="crop", max_length=128, dtype="float32", template="plain")
    return build_vlm(cfg, seed=3), spec


def test_a_complete_export_passes_and_a_damaged_one_is_refused(tiny, tmp_path):
    vlm, spec = tiny
    out = str(tmp_path / "export-hf")
    write_format("hf", vlm, spec, out)
    weights = load_file(os.path.join(out, "model.safetensors"))
    assert any(k.startswith("vision_tower.vision_model.") for k in weights)
    written = from_published(weights)
    check_hf_export(out, written)
    changed = dict(written, **{"model.multi_modal_projector.linear_1.bias": written[
        "model.multi_modal_projector.linear_1.bias"] + 1})
    with pytest.raises(PadError, match="values other than the exported ones"):
        check_hf_export(out, changed)
    dropped = {k: v for k, v in weights.items() if "post_layernorm" not in k}
    save_file(dropped, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(PadError, match="missing.*post_layernorm") as e:
        check_hf_export(out, written)
    assert "\n" not in str(e.value)


def test_pad_export_refuses_a_partial_layout_and_leaves_nothing(tiny, tmp_path, monkeypatch):
    vlm, spec = tiny
    import trainer.export.published as published

    original = published.to_published

    def lose_embeddings(state):  # a writer that drops weights: the loader would initialise them afresh
        return {k: v for k, v in original(state).items() if "embeddings" not in k}

    monkeypatch.setattr(published, "to_published", lose_embeddings)
    out = str(tmp_path / "export-hf")
    with pytest.raises(PadError, match="missing") as e:
        write_format("hf", vlm, spec, out)
    assert "export refused" in str(e.value) and "\n" not in str(e.value)
    assert not os.path.exists(out) and not os.path.exists(out + ".partial")
    assert torch.is_tensor(vlm.model.projector.weight)  # the model itself is untouched
