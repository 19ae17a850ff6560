"""Writing models in the layouts every consumer reads (see `export_keys`), instead of `save_pretrained`'s.

`save_published_llava(model, out_dir)`: a transformers `LlavaForConditionalGeneration` as the published
llava-hf checkpoints are (safetensors shards + index in their key layout, `config.json` in the 4.x spelling,
`generation_config.json`); `save_published_clip(tower, processor, out_dir)`: a `CLIPVisionModel` folder with
`vision_model.*` keys (LLaVA's `vision_tower/`). Both return the weights written, under the names the
installed transformers gives them, for `export_check` to compare with what a loader builds.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch
from huggingface_hub import save_torch_state_dict
from transformers import CLIPImageProcessor, LlavaForConditionalGeneration, PreTrainedModel

from trainer.export.keys import clip_published, to_published
from trainer.export.legacy_files import legacy_llava_config

MAX_SHARD = "5GB"


def _write_json(path: str, data: dict[str, Any]) -> None:
    with open(path, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)


def _tied(config: Any) -> bool:
    text = getattr(config, "text_config", None)
    return bool(getattr(config, "tie_word_embeddings", False) or getattr(text, "tie_word_embeddings", False))


def save_published_llava(model: LlavaForConditionalGeneration, out_dir: str) -> dict[str, torch.Tensor]:
    """`model` into `out_dir` in the published llava-hf layout; the state written (transformers-5 names)."""
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if _tied(model.config):  # the head is the embedding: saved once, as transformers does
        state.pop("lm_head.weight", None)
    os.makedirs(out_dir, exist_ok=True)
    save_torch_state_dict(to_published(state), out_dir, max_shard_size=MAX_SHARD, metadata={"format": "pt"})
    config = legacy_llava_config(model.config.to_dict())
    config["architectures"] = [type(model).__name__]
    _write_json(os.path.join(out_dir, "config.json"), config)
    if model.generation_config is not None:
        model.generation_config.save_pretrained(out_dir)
    return state


def save_published_clip(tower: PreTrainedModel, processor: CLIPImageProcessor, out_dir: str,
                        dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """A `CLIPVisionModel` folder with the `vision_model.*` keys 4.x reads; the state written (own names)."""
    state = {k: (v.to(dtype) if dtype is not None else v).detach().contiguous() for k, v in tower.state_dict().items()}
    os.makedirs(out_dir, exist_ok=True)
    save_torch_state_dict(clip_published(state), out_dir, max_shard_size=MAX_SHARD, metadata={"format": "pt"})
    config = tower.config.to_dict()
    config["architectures"] = [type(tower).__name__]
    if "dtype" in config:
        config["torch_dtype"] = config.pop("dtype")
    _write_json(os.path.join(out_dir, "config.json"), config)
    processor.save_pretrained(out_dir)
    return state
