"""mm_projector.bin carries LLaVA's key names and the 7B shapes; safetensors round-trips; PAD's format
reads back; an export folder appears only when complete."""

import os

import pytest
import torch
from transformers import CLIPVisionConfig, LlamaConfig

from pad_pipeline.core.errors import PadError
from trainer.export.llava import llava_state_dict
from trainer.export.pad_format import (
    export_projector,
    load_projector,
    projector_metadata,
    read_pad_export,
    write_pad_info,
)
from trainer.export.spec import staged_folder
from trainer.models.projectors import build_projector

# openai/clip-vit-large-patch14-336 vision tower and lmsys/vicuna-7b-v1.5, written out (no download).
VIT_L_336 = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                             image_size=336, patch_size=14)
VICUNA_7B = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                        vocab_size=32000)


def test_mm_projector_bin_has_llava_keys_and_7b_shapes(tmp_path):
    with torch.device("meta"):
        projector = build_projector("mlp2x_gelu", VIT_L_336.hidden_size, VICUNA_7B.hidden_size)
    state = llava_state_dict(projector.state_dict(), torch.bfloat16)
    path = tmp_path / "mm_projector.bin"
    torch.save(state, path)
    loaded = torch.load(path, weights_only=True)
    assert {k: tuple(v.shape) for k, v in loaded.items()} == {
        "model.mm_projector.0.weight": (4096, 1024), "model.mm_projector.0.bias": (4096,),
        "model.mm_projector.2.weight": (4096, 4096), "model.mm_projector.2.bias": (4096,)}
    assert all(v.dtype == torch.bfloat16 for v in loaded.values())
    assert (VIT_L_336.image_size // VIT_L_336.patch_size) ** 2 == 576


def test_export_writes_both_files_and_safetensors_rebuilds(tmp_path):
    torch.manual_seed(0)
    projector = build_projector("mlp2x_gelu", 8, 16)
    meta = projector_metadata("mlp2x_gelu", 8, 16, 256, 3, None, 64)
    paths = export_projector(projector.state_dict(), str(tmp_path), meta, dtype="float32")
    bin_state = torch.load(paths["mm_projector"], weights_only=True)
    assert torch.equal(bin_state["model.mm_projector.2.weight"], projector[2].weight.detach())
    rebuilt = load_projector(paths["safetensors"])
    x = torch.randn(1, 4, 8)
    assert torch.equal(rebuilt(x), projector(x))


def test_c_abstractor_gets_no_llava_file_and_pad_format_reads_back(tmp_path):
    torch.manual_seed(1)
    projector = build_projector("c_abstractor", 8, 16, num_tokens=4, depth=1, input_tokens=16)
    meta = projector_metadata("c_abstractor", 8, 16, 4, 1, None, 16)
    paths = export_projector(projector.state_dict(), str(tmp_path), meta, dtype="float32")
    assert sorted(paths) == ["safetensors"] and not (tmp_path / "mm_projector.bin").exists()
    with pytest.raises(PadError, match="pad_export.json"):
        read_pad_export(str(tmp_path))
    write_pad_info(str(tmp_path), {"stage": 1, "projector": meta})
    back = read_pad_export(str(tmp_path))
    x = torch.randn(2, 16, 8)
    assert back.stage == 1 and back.llm_dir is None and torch.equal(back.projector(x), projector.eval()(x))
    write_pad_info(str(tmp_path), {"stage": 2, "projector": meta})
    with pytest.raises(PadError, match="llm/config.json"):
        read_pad_export(str(tmp_path))


def test_staged_folder_replaces_only_on_success(tmp_path):
    out = tmp_path / "export-hf"
    with staged_folder(str(out)) as tmp:
        open(os.path.join(tmp, "a"), "w").write("1")
    assert os.listdir(out) == ["a"]
    with pytest.raises(RuntimeError):
        with staged_folder(str(out)) as tmp:
            open(os.path.join(tmp, "b"), "w").write("2")
            raise RuntimeError("export failed half way")
    assert os.listdir(out) == ["a"]  # the old export stays; the half-written one is only a .partial
