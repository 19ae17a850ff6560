"""LLaVA's formats, checked against LLaVA's own loading code transcribed below (haotian-liu/LLaVA, which
pins transformers 4.37 and cannot be installed beside transformers 5): the stage-1 config.json carries the
keys LLaVA's pretraining writes, `load_pretrained_model(export, base)` and `--pretrain_mm_mlp_adapter` load
the projector, and the full LlavaLlamaForCausalLM folder loads and computes PAD's logits."""

import dataclasses
import json
import os
import re

import pytest
import torch
from torch import nn
from transformers import CLIPVisionModel, LlamaConfig, LlamaForCausalLM

from pad_pipeline.core.errors import PadError
from trainer.config.sections import ModelConfig
from trainer.constants import IMAGE_TOKEN_INDEX  # -200, as llava/constants.py
from trainer.export.llava import export_llava, llava_config
from trainer.export.pad_format import export_pad
from trainer.export.spec import ExportSpec
from trainer.models import tiny
from trainer.models.loading import build_vlm

# The config keys LLaVA sets beyond its LLM's (llava/model/llava_arch.py initialize_vision_modules;
# llava/train/train.py train(); save_pretrained adds architectures and model_type).
LLAVA_KEYS = {"mm_vision_tower", "use_mm_proj", "mm_projector_type", "mm_hidden_size", "mm_vision_select_layer",
              "mm_vision_select_feature", "mm_patch_merge_type", "image_aspect_ratio", "tokenizer_padding_side",
              "tokenizer_model_max_length", "tune_mm_mlp_adapter", "freeze_mm_mlp_adapter", "mm_use_im_start_end",
              "mm_projector_lr", "mm_use_im_patch_token", "use_cache", "architectures", "model_type"}
# transformers 4.x spellings LLaVA's pinned version reads (v5 writes rope_parameters and dtype instead).
LEGACY_KEYS = {"rope_theta", "rope_scaling", "torch_dtype"}


class LlavaConfig(LlamaConfig):  # llava/model/language_model/llava_llama.py
    model_type = "llava_llama"


def build_vision_projector(config) -> nn.Module:  # llava/model/multimodal_projector/builder.py
    projector_type = getattr(config, "mm_projector_type", "linear")
    if projector_type == "linear":
        return nn.Linear(config.mm_hidden_size, config.hidden_size)
    mlp_gelu_match = re.match(r"^mlp(\d+)x_gelu$", projector_type)
    modules: list[nn.Module] = [nn.Linear(config.mm_hidden_size, config.hidden_size)]
    for _ in range(1, int(mlp_gelu_match.group(1))):
        modules += [nn.GELU(), nn.Linear(config.hidden_size, config.hidden_size)]
    return nn.Sequential(*modules)


class LlavaLlamaForCausalLM(LlamaForCausalLM):  # its module tree: model.mm_projector beside model.layers
    config_class = LlavaConfig

    def __init__(self, config):
        super().__init__(config)
        self.model.mm_projector = build_vision_projector(config)


def _vlm(kind: str):
    cfg = ModelConfig.model_validate({"vision": {"checkpoint": "tiny-random"}, "projector": {"kind": kind},
                                      "llm": {"checkpoint": "tiny-random", "gradient_checkpointing": False}})
    vlm = build_vlm(cfg, seed=5)
    return vlm, ExportSpec(stage=1, model=cfg, image_aspect="pad", max_length=256, dtype="float32", template="plain")


def test_stage1_config_has_llava_keys_over_the_llm_config(tmp_path):
    vlm, spec = _vlm("mlp2x_gelu")
    export_pad(vlm, spec, str(tmp_path))
    config = LlavaConfig.from_pretrained(str(tmp_path))
    written = set(json.loads((tmp_path / "config.json").read_text()))
    assert written == set(vlm.model.llm.config.to_dict()) - {"dtype"} | LLAVA_KEYS | LEGACY_KEYS
    assert config.architectures == ["LlavaLlamaForCausalLM"] and config.model_type == "llava_llama"
    assert (config.mm_projector_type, config.mm_hidden_size, config.hidden_size) == ("mlp2x_gelu", 32, 64)
    assert (config.mm_vision_select_layer, config.mm_vision_select_feature) == (-2, "patch")
    assert config.mm_use_im_start_end is False and config.mm_use_im_patch_token is False  # LLaVA defaults True
    assert config.image_aspect_ratio == "pad" and config.tune_mm_mlp_adapter is True


@pytest.mark.parametrize("kind", ["linear", "mlp2x_gelu"])
def test_load_pretrained_model_and_pretrain_mm_mlp_adapter_take_the_stage1_export(tmp_path, kind):
    vlm, spec = _vlm(kind)
    base, export = str(tmp_path / "base"), str(tmp_path / "export")
    vlm.model.llm.save_pretrained(base)
    export_pad(vlm, spec, export)
    weights = torch.load(os.path.join(export, "mm_projector.bin"), map_location="cpu", weights_only=True)
    # llava/model/builder.py, model_base given: the base LLM under the export's config, then the projector.
    model = LlavaLlamaForCausalLM.from_pretrained(base, config=LlavaConfig.from_pretrained(export))
    result = model.load_state_dict(weights, strict=False)
    assert result.unexpected_keys == []
    x = torch.randn(2, vlm.vision_grid ** 2, 32)
    with torch.no_grad():
        want = vlm.model.projector(x)
        torch.testing.assert_close(model.model.mm_projector(x), want, atol=0, rtol=0)
    # llava_arch.initialize_vision_modules with --pretrain_mm_mlp_adapter: a strict load after get_w.
    fresh = build_vision_projector(LlavaConfig.from_pretrained(export))
    fresh.load_state_dict({k.split("mm_projector.")[1]: v for k, v in weights.items() if "mm_projector" in k})
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), want, atol=0, rtol=0)


def test_llava_folder_loads_with_no_missing_weight_and_gives_pad_logits(tmp_path):
    vlm, spec = _vlm("mlp2x_gelu")
    vlm.model.eval()
    base = tmp_path / "base"  # an LLM folder with a sentencepiece model, as Vicuna's hub snapshot has
    base.mkdir()
    (base / "tokenizer.model").write_bytes(b"sentencepiece")
    model_cfg = spec.model.model_copy(deep=True)
    model_cfg.llm.checkpoint = str(base)
    export_llava(vlm, dataclasses.replace(spec, model=model_cfg), str(tmp_path))
    # LLaVA loads its tokenizer with use_fast=False, which needs tokenizer.model: copied from the LLM's files.
    assert (tmp_path / "tokenizer.model").read_bytes() == b"sentencepiece"
    model, info = LlavaLlamaForCausalLM.from_pretrained(str(tmp_path), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    config = model.config
    assert config.mm_vision_tower == os.path.abspath(tmp_path / "vision_tower")  # tiny towers are saved
    tower = CLIPVisionModel.from_pretrained(config.mm_vision_tower).eval()
    pixels = torch.randn(1, 3, tiny.TINY_IMAGE_SIZE, tiny.TINY_IMAGE_SIZE)
    ids = torch.tensor([[1, 40, IMAGE_TOKEN_INDEX, 50, 60, 70]])
    with torch.no_grad():
        # clip_encoder.feature_select ("patch": CLS dropped) -> mm_projector -> spliced at the image token.
        feats = tower(pixels, output_hidden_states=True).hidden_states[config.mm_vision_select_layer][:, 1:]
        image = model.model.mm_projector(feats)
        text = model.get_input_embeddings()(ids[ids != IMAGE_TOKEN_INDEX])[None]
        theirs = model(inputs_embeds=torch.cat([text[:, :2], image, text[:, 2:]], 1)).logits
        ours = vlm.model.logits(ids, pixels)
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-5)
    assert os.path.isfile(tmp_path / "tokenizer_config.json") and os.path.isfile(tmp_path / "generation_config.json")


def test_c_abstractor_and_non_llama_llms_are_refused_in_one_line():
    llm = LlamaConfig(hidden_size=64, num_attention_heads=4)
    common = dict(vision_hidden=32, select_layer=-2, drop_cls=True, vision_tower="openai/clip-vit-large-patch14-336",
                  image_aspect="pad", max_length=2048, stage=1, dtype="bfloat16")
    with pytest.raises(PadError, match="c_abstractor has no class in LLaVA") as e:
        llava_config(llm, kind="c_abstractor", **common)
    assert "\n" not in str(e.value)
    from transformers import Qwen2Config

    with pytest.raises(PadError, match="Llama-family"):
        llava_config(Qwen2Config(hidden_size=64, num_attention_heads=4), kind="linear", **common)


def test_llama31_rope_is_written_as_transformers_4_reads_it():
    rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    llm = LlamaConfig(hidden_size=64, num_attention_heads=4, max_position_embeddings=131072, rope_parameters=rope)
    config = llava_config(llm, kind="mlp2x_gelu", vision_hidden=32, select_layer=-2, drop_cls=True,
                          vision_tower="openai/clip-vit-large-patch14-336", image_aspect="pad", max_length=2048,
                          stage=2, dtype="bfloat16")
    assert config["rope_theta"] == 500000.0
    assert config["rope_scaling"] == {k: v for k, v in rope.items() if k != "rope_theta"}
    assert config["torch_dtype"] == "bfloat16" and "dtype" not in config and config["tune_mm_mlp_adapter"] is False
