"""Loading the stage-1 parts by hub id or local path (or `tiny-random`) and assembling the VLM.

`load_vision(cfg, dtype)` -> (CLIPVisionModel, CLIPImageProcessor); `load_llm(cfg, dtype)` ->
(causal LM, tokenizer); `build_vlm(cfg.model, dtype)` -> `LoadedVLM` with the projector sized from the
two models' configs. The tiny preset goes through the same assembly, so tests exercise this code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    CLIPImageProcessor,
    CLIPVisionModel,
    PreTrainedTokenizerBase,
)

from pad_pipeline.core.errors import PadError
from pad_pipeline.core.runtime import TINY_RANDOM, set_seed
from trainer.config import LlmConfig, ModelConfig, VisionConfig
from trainer.models import tiny
from trainer.models.projectors import build_projector
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


def _hub_error(what: str, checkpoint: str, e: Exception) -> PadError:
    return PadError(f"field 'model.{what}.checkpoint': cannot load {checkpoint!r} ({type(e).__name__}: "
                    f"{str(e).splitlines()[0] if str(e) else ''})")


def load_vision(cfg: VisionConfig, dtype: torch.dtype = torch.float32) -> tuple[CLIPVisionModel, CLIPImageProcessor]:
    if cfg.checkpoint == TINY_RANDOM:
        return tiny.tiny_vision_model().to(dtype), tiny.tiny_image_processor()
    try:
        model = CLIPVisionModel.from_pretrained(cfg.checkpoint, revision=cfg.revision, dtype=dtype)
        processor = CLIPImageProcessor.from_pretrained(cfg.checkpoint, revision=cfg.revision)
    except (OSError, ValueError) as e:
        raise _hub_error("vision", cfg.checkpoint, e) from None
    return model.eval(), processor


def load_llm(cfg: LlmConfig, dtype: torch.dtype = torch.float32) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    if cfg.checkpoint == TINY_RANDOM:
        tokenizer = tiny.tiny_tokenizer()
        return tiny.tiny_llm(len(tokenizer)).to(dtype), tokenizer
    try:
        tokenizer = AutoTokenizer.from_pretrained(cfg.checkpoint, revision=cfg.revision)
        model = AutoModelForCausalLM.from_pretrained(cfg.checkpoint, revision=cfg.revision, dtype=dtype)
    except (OSError, ValueError) as e:
        raise _hub_error("llm", cfg.checkpoint, e) from None
    if tokenizer.pad_token_id is None:  # Vicuna/Llama: LLaVA pads with unk
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return model, tokenizer


def build_vlm(cfg: ModelConfig, dtype: torch.dtype = torch.float32, seed: int = 0) -> LoadedVLM:
    """Load both frozen models, build a fresh projector (seeded) and assemble them."""
    vision, processor = load_vision(cfg.vision, dtype)
    llm, tokenizer = load_llm(cfg.llm, dtype)
    if cfg.llm.gradient_checkpointing:
        # Non-reentrant: the LLM's inputs (projected tokens) carry the gradient, its weights do not.
        if hasattr(llm, "activation_checkpointing_enable"):  # transformers >= 5.x name
            llm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    vcfg = vision.config
    grid = vcfg.image_size // vcfg.patch_size
    set_seed(seed)
    p = cfg.projector
    projector = build_projector(p.kind, vcfg.hidden_size, llm.config.hidden_size, num_tokens=p.num_tokens,
                                depth=p.depth, hidden_size=p.hidden_size,
                                input_tokens=grid * grid + (0 if cfg.vision.drop_cls else 1)).to(dtype)
    model = PatchAlignedVLM(vision, projector, llm, cfg.vision.select_layer, cfg.vision.drop_cls,
                            tuple(processor.image_mean), tuple(processor.image_std))
    return LoadedVLM(model, processor, tokenizer, grid, projector.output_grid(grid))
