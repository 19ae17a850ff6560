"""The models `pad eval` asks: a stage-1 run (or a random projector) for captions, a stage-2 run for REC.

`check_stage1` / `check_stage2` read only configs and file names (cheap, before any model loads) and raise a
one-line `PadError` naming the run and what is missing. `stage1_subject` rebuilds the run's VLM (frozen
LLM, vision tower from the run's model section) with its trained projector (through
`trainer.export.projector_source`, the one projector reader) and the `plain` template stage 1 trained on;
`stage2_subject` loads a `pad sft` run's final checkpoint with its own chat template. Both keep the run's
`image_aspect`, so images reach the model as they did in training.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from pad_pipeline.core import runtime
from pad_pipeline.core.errors import PadError
from trainer.data.chat.templates import ConversationTemplate, get_template
from trainer.data.geometry import ProcessorSpec
from trainer.eval.config import RANDOM, GenerationConfig, ModelSpec
from trainer.eval.hf_source import is_hf_llava
from trainer.export.from_run import load_trained_vlm, read_run_config
from trainer.export.projector_source import check_widths, read_projector, run_projector_file
from trainer.models.loading import LoadedVLM, inference_vlm
from trainer.models.placement import move_to
from trainer.models.projectors import input_tokens
from trainer.models.vlm import PatchAlignedVLM
from trainer.run_layout import LLM_FILE, PROJECTOR_FILE
from trainer.training import checkpoint as checkpoints


@dataclass
class Subject:
    """A model ready to answer: the VLM, its tokenizer, its template and its image geometry."""

    model: PatchAlignedVLM
    tokenizer: PreTrainedTokenizerBase
    template: ConversationTemplate
    spec: ProcessorSpec
    source: str   # what was loaded, for the table and the predictions' provenance


def _stage1_config(name: str, run: str) -> Any:
    cfg, stage = read_run_config(run)
    if stage != 1:
        raise PadError(f"models.{name}.stage1: {run} is a pad sft run; captions need the stage-1 (pad pretrain) run")
    return cfg


def check_stage1(name: str, spec: ModelSpec) -> str:
    """The stage-1 weights `spec` names (a projector file, or `random`), checked to exist."""
    if spec.stage1 is None or spec.stage1 == RANDOM:
        return RANDOM
    if not os.path.isdir(spec.stage1):
        raise PadError(f"models.{name}.stage1: {spec.stage1} does not exist (a pad pretrain run folder)")
    _stage1_config(name, spec.stage1)
    return run_projector_file(spec.stage1)


def check_stage2(name: str, run: str) -> str:
    """The final checkpoint of `pad sft` run `run`, checked to hold the projector and LLM weights (or `run`
    itself when it is a transformers Llava folder or a `hub:` id)."""
    if is_hf_llava(run):
        return run
    if not os.path.isdir(run):
        raise PadError(f"models.{name}.stage2: {run} does not exist (a pad sft run folder)")
    if read_run_config(run)[1] != 2:
        raise PadError(f"models.{name}.stage2: {run} is a pad pretrain run; REC needs the stage-2 (pad sft) run")
    final = checkpoints.latest_checkpoint(run)
    if final is None:
        raise PadError(f"models.{name}.stage2: {run} has no complete checkpoint (train it first)")
    for file in (PROJECTOR_FILE, LLM_FILE):
        if not os.path.isfile(os.path.join(final, file)):
            raise PadError(f"models.{name}.stage2: {final} has no {file} (not a pad sft checkpoint?)")
    return final


def stage1_subject(name: str, spec: ModelSpec) -> Subject:
    if spec.stage1 == RANDOM:
        assert spec.model is not None  # EvalConfig requires `model` for a random stage1
        vlm = inference_vlm(spec.model, seed=spec.seed)
        return _subject(vlm, "plain", "crop", f"random projector (seed {spec.seed})")
    assert spec.stage1 is not None
    cfg = _stage1_config(name, spec.stage1)
    vlm = inference_vlm(cfg.model, seed=cfg.train.seed)
    path = run_projector_file(spec.stage1)
    vision_dim, llm_dim = vlm.model.vision.config.hidden_size, vlm.model.llm.config.hidden_size
    tokens = input_tokens(vlm.vision_grid, cfg.model.vision.drop_cls)
    projector = read_projector(name, path, None, cfg.model.projector, vision_dim, llm_dim, tokens)
    check_widths(projector, name, vision_dim, llm_dim, tokens)
    vlm.model.projector = projector
    return _subject(vlm, "plain", cfg.data.image_aspect, path)


def stage2_subject(name: str, run: str) -> Subject:
    final = check_stage2(name, run)
    vlm, cfg = load_trained_vlm(run, final)
    return _subject(vlm, cfg.data.template, cfg.data.image_aspect, final)


def _subject(vlm: LoadedVLM, template: str, aspect: Any, source: str) -> Subject:
    spec = ProcessorSpec.from_processor(vlm.processor, aspect)
    return Subject(vlm.model.eval(), vlm.tokenizer, get_template(template), spec, source)


def place(subject: Subject, device: torch.device, dtype: torch.dtype) -> Subject:
    """The subject's model in `dtype` on `device` (every parameter and buffer checked to be there); the
    normalisation buffers stay float32, as in training."""
    for part in (subject.model.vision, subject.model.projector, subject.model.llm):
        part.to(dtype)
    move_to(subject.model, device)
    return subject


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def device_and_dtype(settings: GenerationConfig) -> tuple[torch.device, torch.dtype]:
    """Where and in what dtype models answer: `generation.device` (auto: the first visible GPU), bf16 on GPU."""
    device = runtime.resolve_device(settings.device, "generation.device")
    if settings.dtype == "auto":
        return device, torch.bfloat16 if device.type == "cuda" else torch.float32
    return device, DTYPES[settings.dtype]
