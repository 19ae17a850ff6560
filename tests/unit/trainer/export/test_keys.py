"""The published llava-hf key layout: every key of a transformers-5 `LlavaForConditionalGeneration` maps to the
names of `llava-hf/llava-1.5-7b-hf` (model.safetensors.index.json) and back, and the CLIP tower gains its
`vision_model.` level."""

import pytest
import torch
from transformers import CLIPVisionModel, LlavaConfig, LlavaForConditionalGeneration

from pad_pipeline.core.errors import PadError
from trainer.export.keys import clip_published, from_published, to_published
from trainer.models import tiny

# Key names of the published checkpoint (llava-hf/llava-1.5-7b-hf, model.safetensors.index.json).
PUBLISHED = ["language_model.lm_head.weight", "language_model.model.embed_tokens.weight",
             "language_model.model.layers.0.self_attn.q_proj.weight", "language_model.model.norm.weight",
             "multi_modal_projector.linear_1.bias", "multi_modal_projector.linear_2.weight",
             "vision_tower.vision_model.embeddings.class_embedding",
             "vision_tower.vision_model.encoder.layers.0.self_attn.k_proj.bias",
             "vision_tower.vision_model.post_layernorm.weight", "vision_tower.vision_model.pre_layrnorm.weight"]


def _llava() -> LlavaForConditionalGeneration:
    config = LlavaConfig(vision_config=tiny.tiny_vision_config().to_dict(),
                         text_config=tiny.tiny_llama_config(330).to_dict(), image_token_index=321)
    with torch.device("meta"):
        return LlavaForConditionalGeneration(config)


def test_every_transformers5_key_has_the_published_name_and_comes_back():
    state = _llava().state_dict()
    published = to_published(state)
    assert len(published) == len(state)
    assert set(PUBLISHED) <= set(published)
    assert all(k.split(".")[0] in {"language_model", "vision_tower", "multi_modal_projector"} for k in published)
    assert all(k.startswith("vision_tower.vision_model.") for k in published if k.startswith("vision_tower."))
    assert from_published(published).keys() == state.keys()


def test_a_published_state_is_left_as_it_is_and_unknown_keys_are_refused():
    already = {"model.vision_tower.vision_model.embeddings.class_embedding": 1}  # a 4.x-style tower inside
    assert to_published(already) == {"vision_tower.vision_model.embeddings.class_embedding": 1}
    with pytest.raises(PadError, match="'image_newline'"):
        to_published({"image_newline": 1})


def test_clip_tower_keys_gain_vision_model_once():
    state = CLIPVisionModel(tiny.tiny_vision_config()).state_dict()
    published = clip_published(state)
    assert all(k.startswith("vision_model.") and not k.startswith("vision_model.vision_model.") for k in published)
    assert clip_published(published) == published
    assert "vision_model.encoder.layers.0.mlp.fc1.weight" in published
