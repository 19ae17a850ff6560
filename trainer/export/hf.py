"""A transformers `LlavaForConditionalGeneration` folder with its `LlavaProcessor` (`RUN/export-hf/`).

The folder loads with `LlavaForConditionalGeneration.from_pretrained` and `AutoProcessor.from_pretrained`
(what lmms-eval's `llava_hf` model and vLLM read). Mapping from PAD's VLM:
- vision tower `vision.*` -> `model.vision_tower.*` (the same `CLIPVisionModel`); `vision_feature_layer` is
  `model.vision.select_layer` (-2) and `vision_feature_select_strategy` "default" drops CLS, as PAD does;
- LLM `llm.model.*` -> `model.language_model.*`, `llm.lm_head.*` -> `lm_head.*`; the tokenizer gains an
  `<image>` token (`image_token_index`), and the embedding and head gain its row (the mean of the other
  rows: the image rows are always replaced by vision features, so its value never reaches an output);
- projector: transformers' `LlavaMultiModalProjector` is `linear_1 -> act -> linear_2`. `mlp2x_gelu`
  (`0`, GELU, `2`) maps one to one; `linear` becomes `linear_1` with `projector_hidden_act: linear`
  (identity) and `linear_2` = identity matrix with zero bias, which is exact: each output is `x_i * 1`
  plus products with 0.0 (finite inputs), in every float dtype (on GPU, only with TF32 matmul off,
  PyTorch's default). `c_abstractor` has no class there and is refused.
The processor: LLaVA-1.5 evaluates (and PAD's `image_aspect: pad` trains) on images padded to a square
with the mean colour before CLIP's resize and crop. llava-hf's own checkpoints ship a plain
`CLIPImageProcessor` (centre crop, so a non-square image loses its sides there, unlike LLaVA's eval);
transformers' `LlavaImageProcessor(do_pad=True)` pads exactly like LLaVA's `expand2square`, so it is used
for `pad` runs, and `CLIPImageProcessor` for `crop` runs. `patch_size`, `num_additional_image_tokens: 1`
(CLIP's CLS) and `vision_feature_select_strategy` make it expand `<image>` into grid^2 tokens (576 for
ViT-L/14-336). The chat template is the run's template from `trainer.data.chat.templates`.
"""

from __future__ import annotations

import copy
from typing import cast

import torch
from transformers import (
    AddedToken,
    CLIPImageProcessor,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaImageProcessor,
    LlavaProcessor,
    PretrainedConfig,
    PreTrainedTokenizerBase,
)

from pad_pipeline.core.errors import PadError
from trainer.constants import IMAGE_TOKEN
from trainer.export.check import check_hf_export
from trainer.export.legacy_files import rewrite_processor_files, rewrite_tokenizer_files
from trainer.export.published import save_published_llava
from trainer.export.spec import DTYPES, ExportSpec, require_llava_kind, sub_state, vision_and_llm
from trainer.models.loading import LoadedVLM
from trainer.models.projectors import input_tokens

_ACT = {"linear": "linear", "mlp2x_gelu": "gelu"}
_PROJECTOR_KEYS = {"mlp2x_gelu": {"0.weight": "linear_1.weight", "0.bias": "linear_1.bias",
                                  "2.weight": "linear_2.weight", "2.bias": "linear_2.bias"},
                   "linear": {"weight": "linear_1.weight", "bias": "linear_1.bias"}}


def tokenizer_with_image_token(tokenizer: PreTrainedTokenizerBase) -> tuple[PreTrainedTokenizerBase, int]:
    """A copy of `tokenizer` with `<image>` as a special token (kept if it has one); (tokenizer, its id)."""
    tok = copy.deepcopy(tokenizer)
    if IMAGE_TOKEN not in tok.get_vocab():
        tok.add_tokens([AddedToken(IMAGE_TOKEN, special=True, normalized=False)], special_tokens=True)
    return tok, int(tok.convert_tokens_to_ids(IMAGE_TOKEN))  # type: ignore[arg-type]


def projector_state(kind: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """PAD projector keys -> `LlavaMultiModalProjector` keys (`linear` gets its identity `linear_2`)."""
    require_llava_kind(kind, "transformers")
    names = _PROJECTOR_KEYS[kind]
    if set(state) != set(names):
        raise PadError(f"projector state has keys {sorted(state)}, a {kind} projector has {sorted(names)}")
    out = {names[k]: v for k, v in state.items()}
    if kind == "linear":
        width, dtype = out["linear_1.weight"].shape[0], out["linear_1.weight"].dtype
        out["linear_2.weight"] = torch.eye(width, dtype=dtype)
        out["linear_2.bias"] = torch.zeros(width, dtype=dtype)
    return out


def _grow_rows(weight: torch.Tensor, rows: int) -> torch.Tensor:
    if weight.shape[0] >= rows:
        return weight
    extra = weight.float().mean(dim=0, keepdim=True).to(weight.dtype).expand(rows - weight.shape[0], -1)
    return torch.cat([weight, extra])


def hf_state_dict(state: dict[str, torch.Tensor], kind: str, llm_prefix: str, vocab: int) -> dict[str, torch.Tensor]:
    """PAD's VLM state (`vision.*`, `projector.*`, `llm.*`) -> `LlavaForConditionalGeneration` keys."""
    out = {"model.vision_tower." + k: v for k, v in sub_state(state, "vision.").items()}
    out.update({"model.multi_modal_projector." + k: v
                for k, v in projector_state(kind, sub_state(state, "projector.")).items()})
    for k, v in sub_state(state, "llm.").items():
        if k.startswith(llm_prefix + "."):
            out["model.language_model." + k[len(llm_prefix) + 1:]] = v
        else:
            out[k] = v  # lm_head.*
    for key in ("model.language_model.embed_tokens.weight", "lm_head.weight"):
        if key in out:
            out[key] = _grow_rows(out[key], vocab)
    return out


def hf_config(vision_config: PretrainedConfig, llm_config: PretrainedConfig, *, kind: str, image_token_id: int,
              vocab: int, image_tokens: int, select_layer: int, drop_cls: bool, dtype: str) -> LlavaConfig:
    text = llm_config.to_dict()
    text["vocab_size"] = vocab
    config = LlavaConfig(vision_config=vision_config.to_dict(), text_config=text, image_token_index=image_token_id,
                         image_seq_length=image_tokens, projector_hidden_act=_ACT[kind],
                         vision_feature_layer=select_layer, multimodal_projector_bias=True,
                         vision_feature_select_strategy="default" if drop_cls else "full",
                         tie_word_embeddings=bool(getattr(llm_config, "tie_word_embeddings", False)))
    config.dtype = dtype
    return config


def hf_image_processor(processor: CLIPImageProcessor, image_aspect: str) -> CLIPImageProcessor | LlavaImageProcessor:
    """The run's CLIP processor settings; with LLaVA's pad-to-square (mean colour) for `pad` runs."""
    if image_aspect != "pad":
        return CLIPImageProcessor(**processor.to_dict())
    keys = ("do_resize", "size", "resample", "do_center_crop", "crop_size", "do_rescale", "rescale_factor",
            "do_normalize", "image_mean", "image_std", "do_convert_rgb")
    settings = {k: getattr(processor, k) for k in keys if getattr(processor, k, None) is not None}
    return LlavaImageProcessor(**settings, do_pad=True)


def hf_processor(processor: CLIPImageProcessor, tokenizer: PreTrainedTokenizerBase, *, patch_size: int,
                 drop_cls: bool, image_aspect: str, chat_template: str | None) -> LlavaProcessor:
    """`LlavaProcessor` expanding `<image>` into (crop / patch)^2 tokens (+1 CLS, -1 when CLS is dropped);
    `tokenizer` must hold `<image>` (see `tokenizer_with_image_token`); it gets the chat template too."""
    tokenizer.chat_template = chat_template
    return LlavaProcessor(image_processor=hf_image_processor(processor, image_aspect), tokenizer=tokenizer,
                          patch_size=patch_size, image_token=IMAGE_TOKEN, num_additional_image_tokens=1,
                          vision_feature_select_strategy="default" if drop_cls else "full",
                          chat_template=chat_template)


def build_hf_model(vlm: LoadedVLM, state: dict[str, torch.Tensor], spec: ExportSpec,
                   tokenizer: PreTrainedTokenizerBase, image_token_id: int) -> LlavaForConditionalGeneration:
    """The transformers model holding PAD's weights (built on `meta`, then the tensors are assigned)."""
    kind, (vision, llm) = spec.model.projector.kind, vision_and_llm(vlm)
    rows = int(cast(torch.Tensor, llm.get_input_embeddings().weight).shape[0])
    vocab = max(rows, len(tokenizer))
    dtype = DTYPES[spec.dtype]
    weights = {k: v.to(dtype) for k, v in hf_state_dict(state, kind, llm.base_model_prefix, vocab).items()}
    tokens = input_tokens(vlm.vision_grid, spec.model.vision.drop_cls)  # one per patch (+ CLS)
    config = hf_config(vision.config, llm.config, kind=kind, image_token_id=image_token_id, vocab=vocab,
                       image_tokens=tokens, select_layer=spec.model.vision.select_layer,
                       drop_cls=spec.model.vision.drop_cls, dtype=spec.dtype)
    cast(PretrainedConfig, config.text_config).pad_token_id = tokenizer.pad_token_id
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    model.load_state_dict(weights, strict=True, assign=True)
    if llm.generation_config is not None:
        model.generation_config = copy.deepcopy(llm.generation_config)
    return model.eval()


def export_hf(vlm: LoadedVLM, spec: ExportSpec, out_dir: str, chat_template: str | None,
              state: dict[str, torch.Tensor] | None = None) -> dict[str, str]:
    """Write `LlavaForConditionalGeneration` + `LlavaProcessor` to `out_dir`; `state`: the VLM's weights
    (default: `vlm.model.state_dict()`)."""
    require_llava_kind(spec.model.projector.kind, "transformers")
    state = vlm.model.state_dict() if state is None else state
    if vlm.token_grid != vlm.vision_grid:
        raise PadError("export-hf: the projector changes the token count; transformers' Llava needs one per patch")
    tokenizer, image_token_id = tokenizer_with_image_token(vlm.tokenizer)
    model = build_hf_model(vlm, state, spec, tokenizer, image_token_id)
    written = save_published_llava(model, out_dir)  # the published llava-hf layout, not save_pretrained's
    del model
    hf_processor(vlm.processor, tokenizer, patch_size=vision_and_llm(vlm)[0].config.patch_size,
                 drop_cls=spec.model.vision.drop_cls, image_aspect=spec.image_aspect,
                 chat_template=chat_template).save_pretrained(out_dir)
    rewrite_processor_files(out_dir, chat_template)
    rewrite_tokenizer_files(out_dir, tokenizers_015=False, chat_template=chat_template)
    check_hf_export(out_dir, written)
    return {"hf": out_dir}
