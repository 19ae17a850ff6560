"""transformers Llava export: projector key mapping (linear as an exact identity linear_2), refusal of
c_abstractor, `<image>` expansion counts, the processor's geometry, and a full in-process export."""

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoProcessor, CLIPImageProcessor, LlavaConfig, LlavaForConditionalGeneration
from transformers.models.llava.modeling_llava import LlavaMultiModalProjector

from pad_pipeline.core.errors import PadError
from trainer.config.sections import ModelConfig
from trainer.constants import IMAGE_TOKEN_INDEX
from trainer.data.chat.jinja import jinja_for
from trainer.data.chat.templates import get_template
from trainer.data.geometry import ImageGeometry, ProcessorSpec
from trainer.export.hf import (
    export_hf,
    hf_image_processor,
    hf_processor,
    projector_state,
    tokenizer_with_image_token,
)
from trainer.export.spec import ExportSpec
from trainer.models import tiny
from trainer.models.loading import build_vlm
from trainer.models.projectors import build_projector
from trainer.models.vlm import normalize_pixels


def _hf_projector(kind: str, vision_dim: int, llm_dim: int, state: dict) -> LlavaMultiModalProjector:
    act = {"linear": "linear", "mlp2x_gelu": "gelu"}[kind]
    config = LlavaConfig(vision_config={"model_type": "clip_vision_model", "hidden_size": vision_dim},
                         text_config={"model_type": "llama", "hidden_size": llm_dim, "num_attention_heads": 4},
                         projector_hidden_act=act)
    hf = LlavaMultiModalProjector(config)
    hf.load_state_dict(projector_state(kind, state), strict=True)
    return hf


@pytest.mark.parametrize("kind", ["linear", "mlp2x_gelu"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_projector_maps_to_llava_multimodal_projector_exactly(kind, dtype):
    torch.manual_seed(0)
    ours = build_projector(kind, 24, 40).to(dtype).eval()
    hf = _hf_projector(kind, 24, 40, ours.state_dict()).to(dtype).eval()
    x = (torch.randn(3, 49, 24) * torch.logspace(-3, 3, 24)).to(dtype)  # magnitudes 1e-3 .. 1e3
    with torch.no_grad():
        assert torch.equal(hf(x), ours(x))  # bit-exact: linear_2 = I with zero bias adds only exact zeros


def test_key_mapping_of_every_projector_kind():
    lin = projector_state("linear", build_projector("linear", 4, 6).state_dict())
    assert sorted(lin) == ["linear_1.bias", "linear_1.weight", "linear_2.bias", "linear_2.weight"]
    assert torch.equal(lin["linear_2.weight"], torch.eye(6)) and not lin["linear_2.bias"].any()
    mlp = build_projector("mlp2x_gelu", 4, 6).state_dict()
    mapped = projector_state("mlp2x_gelu", mlp)
    assert mapped["linear_1.weight"] is mlp["0.weight"] and mapped["linear_2.bias"] is mlp["2.bias"]
    c_abs = build_projector("c_abstractor", 8, 6, num_tokens=4, depth=1, input_tokens=16).state_dict()
    with pytest.raises(PadError, match="c_abstractor has no class in transformers") as e:
        projector_state("c_abstractor", c_abs)
    assert "\n" not in str(e.value)
    with pytest.raises(PadError, match="keys"):
        projector_state("linear", mlp)  # an mlp state is not a linear projector's


@pytest.mark.parametrize("side,patch,tokens", [(336, 14, 576), (tiny.TINY_IMAGE_SIZE, tiny.TINY_PATCH_SIZE, 64)])
def test_processor_expands_image_token_to_one_per_patch(side, patch, tokens):
    clip = CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    tok, image_id = tokenizer_with_image_token(tiny.tiny_tokenizer())
    assert image_id == len(tiny.tiny_tokenizer()) and len(tok.encode("<image>", add_special_tokens=False)) == 1
    proc = hf_processor(clip, tok, patch_size=patch, drop_cls=True, image_aspect="pad",
                        chat_template=jinja_for(get_template("vicuna_v1")))
    image = Image.fromarray(np.zeros((50, 80, 3), dtype=np.uint8))
    ids = proc(images=image, text="USER: <image>\nwhat is this? ASSISTANT:", return_tensors="pt")["input_ids"]
    assert int((ids == image_id).sum()) == tokens
    keep_cls = hf_processor(clip, tok, patch_size=patch, drop_cls=False, image_aspect="pad", chat_template=None)
    with_cls = keep_cls(images=image, text="<image>", return_tensors="pt")["input_ids"]
    assert int((with_cls == image_id).sum()) == tokens + 1


@pytest.mark.parametrize("aspect", ["pad", "crop"])
def test_exported_image_processor_reproduces_pad_training_geometry(aspect):
    clip = tiny.tiny_image_processor()
    hf, spec = hf_image_processor(clip, aspect), ProcessorSpec.from_processor(clip, aspect)
    for w, h in [(150, 90), (90, 151), (300, 200)]:
        pixels = np.random.RandomState(w).randint(0, 256, (h, w, 3), dtype=np.uint8)
        theirs = hf(images=Image.fromarray(pixels), return_tensors="pt")["pixel_values"][0]
        ours = ImageGeometry.plan(w, h, spec).apply(torch.from_numpy(pixels).permute(2, 0, 1).contiguous(), spec)
        ours = normalize_pixels(ours[None], torch.tensor(spec.mean), torch.tensor(spec.std))[0]
        torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=0)


def _in_process_export(tmp_path, kind: str):
    cfg = ModelConfig.model_validate({"vision": {"checkpoint": "tiny-random"}, "projector": {"kind": kind},
                                      "llm": {"checkpoint": "tiny-random", "gradient_checkpointing": False}})
    vlm = build_vlm(cfg, seed=3)
    vlm.model.eval()
    spec = ExportSpec(stage=1, model=cfg, image_aspect="pad", max_length=256, dtype="float32", template="plain")
    export_hf(vlm, spec, str(tmp_path), jinja_for(get_template("vicuna_v1")))
    return vlm


def test_in_process_export_loads_generates_and_matches_pad_logits(tmp_path):
    vlm = _in_process_export(tmp_path, "linear")
    model = LlavaForConditionalGeneration.from_pretrained(str(tmp_path)).eval()
    processor = AutoProcessor.from_pretrained(str(tmp_path))
    assert model.config.vision_feature_layer == -2 and model.config.vision_feature_select_strategy == "default"
    assert model.config.projector_hidden_act == "linear"
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what is here?"}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    assert prompt.endswith("ASSISTANT:") and "<image>\nwhat is here?" in prompt
    image = Image.fromarray(np.random.RandomState(0).randint(0, 256, (90, 120, 3), dtype=np.uint8))
    inputs = processor(images=image, text=prompt, return_tensors="pt")
    ids = inputs["input_ids"][0]
    image_at = (ids == model.config.image_token_index).nonzero()[:, 0]
    assert len(image_at) == 64 and int(image_at[-1] - image_at[0]) == 63  # one run of placeholders
    pad_ids = torch.cat([ids[:image_at[0]], torch.tensor([IMAGE_TOKEN_INDEX]), ids[image_at[-1] + 1:]])[None]
    with torch.no_grad():
        theirs = model(**inputs).logits
        ours = vlm.model.logits(pad_ids, inputs["pixel_values"])
        out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    vocab = ours.shape[-1]
    assert theirs.shape[-1] == vocab + 1  # the added <image> row
    torch.testing.assert_close(theirs[..., :vocab], ours, atol=1e-5, rtol=1e-5)
    assert out.shape[1] == ids.shape[0] + 4
