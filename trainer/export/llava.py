"""LLaVA's own formats: the stage-1 `config.json` beside `mm_projector.bin`, and the `LlavaLlamaForCausalLM` folder.

`llava_config(...)` is the config LLaVA's `train.py` saves: LLaVA's `LlavaConfig` is `LlamaConfig` with
`model_type: llava_llama`, so it is the LLM's own config plus the keys `initialize_vision_modules` and
`train()` set (`mm_vision_tower`, `mm_projector_type`, `mm_hidden_size`, `mm_vision_select_layer`,
`mm_vision_select_feature`, `image_aspect_ratio`, ...). With it, `load_pretrained_model(RUN/export,
BASE_LLM, "llava-...")` builds `LlavaLlamaForCausalLM` from the base weights and this config and loads
`mm_projector.bin` into it, and `finetune.sh --pretrain_mm_mlp_adapter RUN/export/mm_projector.bin` starts
stage 2 from it. `export_llava(...)` writes the full folder LLaVA's evaluation scripts load with no base:
the same config, the LLM's weights under their own names (LLaVA's model subclasses `LlamaForCausalLM`)
plus `model.mm_projector.*`, safetensors shards, the tokenizer and the generation config. The vision tower
is not copied: `mm_vision_tower` names the CLIP checkpoint LLaVA loads itself (as its own releases do);
only `tiny-random` towers, which exist nowhere else, are saved into `vision_tower/` and named by path.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import torch
from huggingface_hub import save_torch_state_dict
from transformers import PretrainedConfig

from pad_pipeline.core.errors import PadError
from pad_pipeline.core.runtime import TINY_RANDOM
from trainer.export.spec import DTYPES, ExportSpec, require_llava_kind, sub_state, vision_and_llm
from trainer.models.loading import LoadedVLM

LLAVA_ARCHITECTURE = "LlavaLlamaForCausalLM"
LLAVA_MODEL_TYPE = "llava_llama"
LLAVA_PREFIX = "model.mm_projector."


def llava_state_dict(state: dict[str, torch.Tensor], dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Projector state dict -> LLaVA's `mm_projector.bin` keys (optionally cast)."""
    return {LLAVA_PREFIX + k: (v.to(dtype) if dtype is not None else v) for k, v in state.items()}


def _legacy_rope(llm_config: PretrainedConfig) -> dict[str, Any]:
    """`rope_theta` / `rope_scaling` as transformers 4.x (LLaVA pins 4.37) reads them."""
    params = dict(getattr(llm_config, "rope_parameters", None) or {})
    theta = params.pop("rope_theta", getattr(llm_config, "rope_theta", 10000.0))
    scaling = None if params.get("rope_type", "default") == "default" else params
    return {"rope_theta": theta, "rope_scaling": scaling}


def llava_config(llm_config: PretrainedConfig, *, kind: str, vision_hidden: int, select_layer: int,
                 drop_cls: bool, vision_tower: str, image_aspect: str, max_length: int, stage: int,
                 dtype: str) -> dict[str, Any]:
    """LLaVA's `config.json`: the LLM's config + the mm_* keys its training sets (see the module doc)."""
    require_llava_kind(kind, "LLaVA")
    if llm_config.model_type != "llama":
        raise PadError(f"field 'model.llm.checkpoint': a {llm_config.model_type} LLM; LLaVA's "
                       f"{LLAVA_ARCHITECTURE} takes Llama-family LLMs only (use --format hf)")
    config = llm_config.to_dict()
    config.update(_legacy_rope(llm_config))
    config.update({
        "architectures": [LLAVA_ARCHITECTURE], "model_type": LLAVA_MODEL_TYPE, "torch_dtype": dtype,
        "use_cache": True,
        # initialize_vision_modules
        "mm_vision_tower": vision_tower, "use_mm_proj": True, "mm_projector_type": kind,
        "mm_hidden_size": vision_hidden, "mm_vision_select_layer": select_layer,
        "mm_vision_select_feature": "patch" if drop_cls else "cls_patch", "mm_patch_merge_type": "flat",
        # train(): data and tokenizer settings
        "image_aspect_ratio": "pad" if image_aspect == "pad" else "square",
        "tokenizer_padding_side": "right", "tokenizer_model_max_length": max_length,
        "tune_mm_mlp_adapter": stage == 1, "freeze_mm_mlp_adapter": False, "mm_projector_lr": None,
        "mm_use_im_start_end": False, "mm_use_im_patch_token": False,
    })
    config.pop("dtype", None)
    return config


def config_for(vlm: LoadedVLM, spec: ExportSpec, vision_tower: str | None = None) -> dict[str, Any]:
    (vision, llm), v = vision_and_llm(vlm), spec.model.vision
    return llava_config(llm.config, kind=spec.model.projector.kind,
                        vision_hidden=vision.config.hidden_size, select_layer=v.select_layer,
                        drop_cls=v.drop_cls, vision_tower=vision_tower or v.checkpoint,
                        image_aspect=spec.image_aspect, max_length=spec.max_length, stage=spec.stage,
                        dtype=spec.dtype)


def write_config(out_dir: str, config: dict[str, Any]) -> str:
    path = os.path.join(out_dir, "config.json")
    with open(path, "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    return path


def llava_model_state_dict(state: dict[str, torch.Tensor], llm_prefix: str = "llm.") -> dict[str, torch.Tensor]:
    """PAD's VLM state -> `LlavaLlamaForCausalLM` keys: the LLM's own names + `model.mm_projector.*`."""
    out = sub_state(state, llm_prefix)
    out.update(llava_state_dict(sub_state(state, "projector.")))
    return out


def _save_tokenizer(vlm: LoadedVLM, spec: ExportSpec, out_dir: str) -> None:
    """The tokenizer files, plus the sentencepiece model LLaVA's `use_fast=False` loader needs, when the
    LLM checkpoint has one locally (a hub cache or a folder)."""
    vlm.tokenizer.save_pretrained(out_dir)
    llm = spec.model.llm
    if llm.checkpoint == TINY_RANDOM or os.path.isfile(os.path.join(out_dir, "tokenizer.model")):
        return
    from transformers.utils import cached_file

    found = cached_file(llm.checkpoint, "tokenizer.model", revision=llm.revision, local_files_only=True,
                        _raise_exceptions_for_missing_entries=False, _raise_exceptions_for_connection_errors=False)
    if found:
        shutil.copyfile(found, os.path.join(out_dir, "tokenizer.model"))


def _vision_tower_name(vlm: LoadedVLM, spec: ExportSpec, out_dir: str, final_dir: str) -> str:
    if spec.model.vision.checkpoint != TINY_RANDOM:
        return spec.model.vision.checkpoint
    vision_and_llm(vlm)[0].save_pretrained(os.path.join(out_dir, "vision_tower"))
    vlm.processor.save_pretrained(os.path.join(out_dir, "vision_tower"))
    return os.path.abspath(os.path.join(final_dir, "vision_tower"))


def export_llava(vlm: LoadedVLM, spec: ExportSpec, out_dir: str, state: dict[str, torch.Tensor] | None = None,
                 final_dir: str | None = None) -> dict[str, str]:
    """LLaVA's `LlavaLlamaForCausalLM` folder at `out_dir` (`final_dir`: where it will live, if renamed);
    `state`: the VLM's weights (default: `vlm.model.state_dict()`)."""
    require_llava_kind(spec.model.projector.kind, "LLaVA")
    state = vlm.model.state_dict() if state is None else state
    os.makedirs(out_dir, exist_ok=True)
    config = config_for(vlm, spec, _vision_tower_name(vlm, spec, out_dir, final_dir or out_dir))
    cast = DTYPES[spec.dtype]
    weights = {k: v.to(cast) for k, v in llava_model_state_dict(state).items()}
    if not any(k.startswith(LLAVA_PREFIX) for k in weights) or "lm_head.weight" not in weights:
        raise PadError("export-llava: the model state has no projector or no LLM head; not a PAD VLM state")
    save_torch_state_dict(weights, out_dir, max_shard_size="5GB", metadata={"format": "pt"})
    write_config(out_dir, config)
    generation = vision_and_llm(vlm)[1].generation_config
    if generation is not None:
        generation.save_pretrained(out_dir)
    _save_tokenizer(vlm, spec, out_dir)
    return {"llava": final_dir or out_dir}
