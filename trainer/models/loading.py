"""Loading the VLM's parts by hub id or local path (or `tiny-random`) and assembling the VLM.

`load_vision(cfg, dtype)` -> (CLIPVisionModel, CLIPImageProcessor); `load_llm(cfg, dtype)` ->
(causal LM, tokenizer); `build_vlm(cfg.model, dtype, train_llm=...)` -> `LoadedVLM` with the projector sized
from the two models' configs (stage 2 trains the LLM too). `load_tokenizer` and `image_token_count` need no
weights (`pad sft --check`). The tiny preset goes through the same assembly, so tests exercise this code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    CLIPImageProcessor,
    CLIPVisionConfig,
    CLIPVisionModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from pad_pipeline.core.errors import PadError
from pad_pipeline.core.runtime import TINY_RANDOM, set_seed
from trainer.config.sections import LlmConfig, ModelConfig, VisionConfig
from trainer.models import tiny
from trainer.models.projectors import CAbstractor, build_projector, input_tokens
from trainer.models.vlm import PatchAlignedVLM


@dataclass
class LoadedVLM:
    model: PatchAlignedVLM
    processor: CLIPImageProcessor
    tokenizer: PreTrainedTokenizerBase
    vision_grid: int      # patch grid side of the vision tower (24 for ViT-L/14-336)
    token_grid: int       # grid side of the projector's output tokens

    @property
    def num_tokens(self) -> int:
        return self.token_grid * self.token_grid

    @property
    def image_tokens(self) -> int:
        """Positions one image takes in the LLM's sequence (the projector's output tokens; CLS kept when
        `drop_cls` is off, except by c_abstractor, which resamples to `num_tokens`)."""
        keeps_cls = not self.model.drop_cls and not isinstance(self.model.projector, CAbstractor)
        return self.num_tokens + (1 if keeps_cls else 0)


def _revision(revision: str | None) -> dict[str, Any]:
    """`revision=` for `from_pretrained` only when one is pinned (the stubs type it as a plain str)."""
    return {"revision": revision} if revision else {}


def _grid(vcfg: CLIPVisionConfig) -> int:
    """Patch grid side of a CLIP vision config (24 for ViT-L/14-336)."""
    image_size, patch_size = vcfg.image_size, vcfg.patch_size
    assert isinstance(image_size, int) and isinstance(patch_size, int), "CLIP sizes are ints"
    return image_size // patch_size


def _hub_error(what: str, checkpoint: str, e: Exception) -> PadError:
    return PadError(f"field 'model.{what}.checkpoint': cannot load {checkpoint!r} ({type(e).__name__}: "
                    f"{str(e).splitlines()[0] if str(e) else ''})")


def load_vision(cfg: VisionConfig, dtype: torch.dtype = torch.float32) -> tuple[CLIPVisionModel, CLIPImageProcessor]:
    if cfg.checkpoint == TINY_RANDOM:
        return tiny.tiny_vision_model().to(dtype), tiny.tiny_image_processor()  # type: ignore[arg-type]
    try:
        model = CLIPVisionModel.from_pretrained(cfg.checkpoint, **_revision(cfg.revision), dtype=dtype)
        processor = CLIPImageProcessor.from_pretrained(cfg.checkpoint, **_revision(cfg.revision))
    except (OSError, ValueError) as e:
        raise _hub_error("vision", cfg.checkpoint, e) from None
    return model.eval(), processor


def load_tokenizer(cfg: LlmConfig) -> PreTrainedTokenizerBase:
    """The LLM's tokenizer alone (pad token set as `load_llm` does)."""
    if cfg.checkpoint == TINY_RANDOM:
        return tiny.tiny_tokenizer()
    try:
        tokenizer = AutoTokenizer.from_pretrained(cfg.checkpoint, **_revision(cfg.revision))
    except (OSError, ValueError) as e:
        raise _hub_error("llm", cfg.checkpoint, e) from None
    if tokenizer.pad_token_id is None:  # Vicuna/Llama: LLaVA pads with unk
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return tokenizer


def image_token_count(cfg: ModelConfig) -> int:
    """Tokens one image becomes (576 for ViT-L/14-336 + mlp2x_gelu), from the vision config alone."""
    if cfg.vision.checkpoint == TINY_RANDOM:
        vcfg = tiny.tiny_vision_config()
    else:
        try:
            vcfg = CLIPVisionConfig.from_pretrained(cfg.vision.checkpoint, **_revision(cfg.vision.revision))
        except (OSError, ValueError) as e:
            raise _hub_error("vision", cfg.vision.checkpoint, e) from None
    grid = _grid(vcfg)
    if cfg.projector.kind == "c_abstractor":
        return cfg.projector.num_tokens
    return input_tokens(grid, cfg.vision.drop_cls)


def load_llm(cfg: LlmConfig, dtype: torch.dtype = torch.float32) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    if cfg.checkpoint == TINY_RANDOM:
        tokenizer = tiny.tiny_tokenizer()
        return tiny.tiny_llm(len(tokenizer)).to(dtype), tokenizer  # type: ignore[arg-type]
    try:
        model = AutoModelForCausalLM.from_pretrained(cfg.checkpoint, **_revision(cfg.revision), dtype=dtype)
    except (OSError, ValueError) as e:
        raise _hub_error("llm", cfg.checkpoint, e) from None
    return cast(PreTrainedModel, model), load_tokenizer(cfg)


def inference_vlm(cfg: ModelConfig, dtype: torch.dtype = torch.float32, seed: int = 0) -> LoadedVLM:
    """The VLM as a trained or exported one is rebuilt for inference, export and analysis: the run's model
    section without gradient checkpointing (the caller loads the trained weights)."""
    model_cfg = cfg.model_copy(deep=True)
    model_cfg.llm.gradient_checkpointing = False
    return build_vlm(model_cfg, dtype=dtype, seed=seed)


def build_vlm(cfg: ModelConfig, dtype: torch.dtype = torch.float32, seed: int = 0,
              train_llm: bool = False) -> LoadedVLM:
    """Load both models, build a fresh projector (seeded) and assemble them (the LLM frozen unless `train_llm`)."""
    vision, processor = load_vision(cfg.vision, dtype)
    llm, tokenizer = load_llm(cfg.llm, dtype)
    if cfg.llm.gradient_checkpointing:
        # Non-reentrant: the LLM's inputs (projected tokens) carry the gradient, its weights do not.
        if hasattr(llm, "activation_checkpointing_enable"):  # transformers >= 5.x name
            llm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    vcfg = vision.config
    grid = _grid(vcfg)
    set_seed(seed)
    p = cfg.projector
    projector = build_projector(p.kind, vcfg.hidden_size, llm.config.hidden_size, num_tokens=p.num_tokens,
                                depth=p.depth, hidden_size=p.hidden_size,
                                input_tokens=input_tokens(grid, cfg.vision.drop_cls)).to(dtype)
    model = PatchAlignedVLM(vision, projector, llm, cfg.vision.select_layer, cfg.vision.drop_cls,
                            tuple(processor.image_mean), tuple(processor.image_std), train_llm=train_llm)
    output_grid = cast(Any, projector).output_grid  # every projector has one (trainer.models.projectors)
    return LoadedVLM(model, processor, tokenizer, grid, output_grid(grid))
