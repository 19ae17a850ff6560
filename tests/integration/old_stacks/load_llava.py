"""Run in LLaVA's stack (transformers 4.37.2, tokenizers 0.15.1): the loading steps of haotian-liu/LLaVA's
`load_pretrained_model` and `initialize_vision_modules`, on PAD's LLaVA exports, with the module tree of its
`LlavaLlamaForCausalLM` (a `LlamaForCausalLM` whose `model` holds `mm_projector`; the CLIP tower is loaded by
name from `mm_vision_tower`, as its `CLIPVisionTower` does). Saves what PAD's side compares.

usage: load_llava.py [full EXPORT_LLAVA PIXELS.pt OUT.pt] [stage1 EXPORT BASE_LLM OUT.pt]  (one process, both)
"""

import re
import sys

import torch
import transformers
from PIL import Image
from torch import nn
from transformers import (
    AutoConfig,
    AutoTokenizer,
    CLIPImageProcessor,
    CLIPVisionModel,
    LlamaConfig,
    LlamaForCausalLM,
)

IMAGE_TOKEN_INDEX = -200  # llava/constants.py
# builder.py on a machine without CUDA: device_map {"": device}, low_cpu_mem_usage (float32 here, not its fp16).
LOAD = {"device_map": {"": "cpu"}, "low_cpu_mem_usage": True, "torch_dtype": torch.float32}


class LlavaConfig(LlamaConfig):
    model_type = "llava_llama"


AutoConfig.register("llava_llama", LlavaConfig)


def projector(config) -> nn.Module:
    """The projector LLaVA builds from `mm_projector_type` (linear, mlpNx_gelu)."""
    kind = getattr(config, "mm_projector_type", "linear")
    if kind == "linear":
        return nn.Linear(config.mm_hidden_size, config.hidden_size)
    depth = int(re.match(r"^mlp(\d+)x_gelu$", kind).group(1))
    layers = [nn.Linear(config.mm_hidden_size, config.hidden_size)]
    for _ in range(1, depth):
        layers += [nn.GELU(), nn.Linear(config.hidden_size, config.hidden_size)]
    return nn.Sequential(*layers)


class LlavaLlamaForCausalLM(LlamaForCausalLM):
    config_class = LlavaConfig

    def __init__(self, config):
        super().__init__(config)
        if hasattr(config, "mm_vision_tower"):
            self.model.mm_projector = projector(config)


def info_of(info) -> dict:
    return {k: list(map(str, v)) for k, v in info.items()}


def full(folder: str, pixels_path: str, out: str) -> None:
    slow = AutoTokenizer.from_pretrained(folder, use_fast=False)
    fast = AutoTokenizer.from_pretrained(folder, use_fast=True)
    model, info = LlavaLlamaForCausalLM.from_pretrained(folder, output_loading_info=True, **LOAD)
    rows = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(len(slow))  # the builder does this; it must not add (random) rows
    config = model.config
    tower, tower_info = CLIPVisionModel.from_pretrained(config.mm_vision_tower, output_loading_info=True)
    processor = CLIPImageProcessor.from_pretrained(config.mm_vision_tower)
    given = torch.load(pixels_path)
    square = Image.fromarray(given["square"].numpy())
    prompt = "USER: <image>\nwhat is this? ASSISTANT:"
    first, rest = prompt.split("<image>")
    ids = slow(first).input_ids + [IMAGE_TOKEN_INDEX] + slow(rest, add_special_tokens=False).input_ids
    with torch.no_grad():
        states = tower.eval()(given["pixels"], output_hidden_states=True).hidden_states
        feats = states[config.mm_vision_select_layer]
        feats = feats[:, 1:] if config.mm_vision_select_feature == "patch" else feats
        image = model.model.mm_projector(feats)
        at = ids.index(IMAGE_TOKEN_INDEX)
        text = model.get_input_embeddings()(torch.tensor([t for t in ids if t != IMAGE_TOKEN_INDEX]))[None]
        logits = model.eval()(inputs_embeds=torch.cat([text[:, :at], image, text[:, at:]], 1)).logits
    torch.save({"version": transformers.__version__, "info": info_of(info), "tower_info": info_of(tower_info),
                "rows": (rows, model.get_input_embeddings().weight.shape[0]), "ids": ids, "logits": logits,
                "fast_ids": fast(first).input_ids, "slow_ids": slow(first).input_ids,
                "tokenizers": (type(slow).__name__, type(fast).__name__),
                "pixels": processor(images=square, return_tensors="pt")["pixel_values"]}, out)


def stage1(export: str, base: str, out: str) -> None:
    # builder.py with model_base: the base LLM under the export's config, then mm_projector.bin, non-strict.
    config = AutoConfig.from_pretrained(export)
    model = LlavaLlamaForCausalLM.from_pretrained(base, config=config, **LOAD)
    weights = torch.load(f"{export}/mm_projector.bin", map_location="cpu")
    result = model.load_state_dict(weights, strict=False)
    # initialize_vision_modules with --pretrain_mm_mlp_adapter: a fresh projector, loaded strictly.
    fresh = projector(config)
    fresh.load_state_dict({k.split("mm_projector.")[1]: v for k, v in weights.items() if "mm_projector" in k})
    tower_info = CLIPVisionModel.from_pretrained(config.mm_vision_tower, output_loading_info=True)[1]
    x = torch.randn(2, 5, config.mm_hidden_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.save({"unexpected": result.unexpected_keys, "tower_info": info_of(tower_info),
                    "missing_projector": [k for k in result.missing_keys if "mm_projector" in k],
                    "x": x, "builder": model.model.mm_projector(x), "adapter": fresh(x),
                    "builder_state": model.model.mm_projector.state_dict(), "adapter_state": fresh.state_dict(),
                    "config": {k: getattr(config, k, None) for k in dir(config) if k.startswith("mm_")}}, out)


if __name__ == "__main__":
    for at in range(1, len(sys.argv), 4):
        {"full": full, "stage1": stage1}[sys.argv[at]](*sys.argv[at + 1:at + 4])
    print(transformers.__version__)
