"""Training steps for bench/gpu.py: stage 1 (and stage 2 where this checkout has it) of the 7B setting.

The model is PAD's own `PatchAlignedVLM` over CLIP ViT-L/14-336 and a Vicuna-7B-shaped Llama (random bf16
weights built on the device from bench/real_configs.py; `--smoke`: the trainer's tiny CLIP and Llama), with
the `mlp2x_gelu` projector and gradient checkpointing on the LLM (non-reentrant, as `build_vlm` sets it).
Stage 1 trains the projector on L = caption + beta * patch (PAD's losses) from a `PatchCollator` batch of
LLaVA-558K-like samples (576 image tokens, a 32-token caption, 8 regions); stage 2 trains projector and LLM
on the LM loss of a `SftCollator` batch (576 image tokens + 512 text tokens, half of them labelled). A
plain `torch.optim.AdamW` stands in for DeepSpeed (absent on the GPU image). Model FLOPs of a step are
counted by bench/flop_count.py on one sample with checkpointing off (recomputation is not useful work),
times the micro-batch; MFU = those FLOPs / step time / the measured bf16 matmul peak.
"""

from __future__ import annotations

import importlib
import inspect
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from flop_count import Env, count_call
from real_configs import clip_vit_large_336_config, vicuna_7b_config
from transformers import CLIPVisionModel, LlamaForCausalLM

from trainer.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from trainer.data.collate import PatchCollator
from trainer.data.patches.sample import PatchSample
from trainer.models import tiny as trainer_tiny
from trainer.models.losses import total_loss
from trainer.models.projectors import build_projector
from trainer.models.vlm import PatchAlignedVLM

CAPTION_TOKENS, REGIONS, TAG_TOKENS = 32, 8, 2
SFT_TEXT_TOKENS = 512


@dataclass
class StepResult:
    samples_per_s: float
    tokens_per_s: float
    step_s: float
    flops_per_step: float
    peak_gib: float | None
    micro_batch: int
    tokens_per_sample: int


def build_towers(device: torch.device, smoke: bool) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(vision tower, LLM) in bf16 on `device`."""
    if smoke:
        vision, llm = trainer_tiny.tiny_vision_model(), trainer_tiny.tiny_llm(len(trainer_tiny.tiny_tokenizer()))
        return vision.to(device, torch.bfloat16), llm.to(device, torch.bfloat16)
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            return CLIPVisionModel(clip_vit_large_336_config()).eval(), LlamaForCausalLM(vicuna_7b_config())
    finally:
        torch.set_default_dtype(torch.float32)


def set_checkpointing(llm: torch.nn.Module, on: bool) -> None:
    """Gradient checkpointing of the LLM, non-reentrant (trainer.models.loading.build_vlm's setting)."""
    if on:
        if hasattr(llm, "activation_checkpointing_enable"):  # transformers >= 5.x name
            llm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        (getattr(llm, "activation_checkpointing_disable", None) or llm.gradient_checkpointing_disable)()


def assemble(vision: torch.nn.Module, llm: torch.nn.Module, train_llm: bool) -> PatchAlignedVLM:
    grid = vision.config.image_size // vision.config.patch_size
    projector = build_projector("mlp2x_gelu", vision.config.hidden_size, llm.config.hidden_size,
                                input_tokens=grid * grid).to(llm.device, torch.bfloat16)
    kwargs = {"train_llm": True} if train_llm else {}
    return PatchAlignedVLM(vision, projector, llm, **kwargs).train()


def stage1_batch(vlm: PatchAlignedVLM, n: int, seed: int = 0) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    size, grid = vlm.vision.config.image_size, vlm.vision.config.image_size // vlm.vision.config.patch_size
    vocab = vlm.llm.config.vocab_size
    samples = []
    for i in range(n):
        caption = torch.randint(3, vocab, (CAPTION_TOKENS,), generator=g).tolist()
        samples.append(PatchSample(
            key=f"s{i}", pixels=torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8),
            input_ids=[1, IMAGE_TOKEN_INDEX, *caption],
            region_masks=torch.rand(REGIONS, grid * grid, generator=g) < 0.15,
            tag_ids=torch.randint(3, vocab, (REGIONS, TAG_TOKENS), generator=g).tolist(), skipped_regions=0,
            labels=[IGNORE_INDEX, IGNORE_INDEX, *caption]))
    return PatchCollator(0)(samples)


def stage2_batch(vlm: PatchAlignedVLM, n: int, text: int = SFT_TEXT_TOKENS, seed: int = 0) -> dict[str, Any]:
    sft_sample = importlib.import_module("trainer.data.chat.sample").SftSample
    collator = importlib.import_module("trainer.data.collate").SftCollator
    g = torch.Generator().manual_seed(seed)
    size, grid = vlm.vision.config.image_size, vlm.vision.config.image_size // vlm.vision.config.patch_size
    text = max(8, min(text, vlm.llm.config.max_position_embeddings - grid * grid - 2))
    samples = []
    for i in range(n):
        ids = torch.randint(3, vlm.llm.config.vocab_size, (text,), generator=g).tolist()
        labels = [IGNORE_INDEX] * (text // 2) + ids[text // 2:]
        samples.append(sft_sample(id=f"s{i}", pixels=torch.randint(0, 256, (3, size, size), generator=g,
                                                                   dtype=torch.uint8),
                                  input_ids=[1, IMAGE_TOKEN_INDEX, *ids], labels=[IGNORE_INDEX, IGNORE_INDEX, *labels]))
    batch = collator(0, size, grid * grid)(samples)
    batch.pop("bad", None)
    return batch


def stage2_available() -> bool:
    """Stage 2 (`pad sft`): its collator and sample type, and a VLM whose LLM can be trained."""
    try:
        importlib.import_module("trainer.data.chat.sample").SftSample  # noqa: B018
        importlib.import_module("trainer.data.collate").SftCollator  # noqa: B018
    except (ImportError, AttributeError):
        return False
    return "train_llm" in inspect.signature(PatchAlignedVLM).parameters


def on_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def stage_loss(forward: Callable[..., dict[str, torch.Tensor]], batch: dict[str, Any], stage: int) -> torch.Tensor:
    """The stage's training loss through `forward` (the VLM itself, or a training engine's forward)."""
    if stage == 1:
        out = forward(batch)
        return total_loss(out["caption_loss"], out["patch_loss"], beta=2.5)
    return forward(batch, with_patch_loss=False)["caption_loss"]


def time_steps(vlm: PatchAlignedVLM, make_batch: Callable[..., dict[str, Any]], stage: int, micro_batch: int,
               steps: int, device: torch.device) -> StepResult:
    """`steps` timed optimizer steps after one warm-up, and the model FLOPs of one step."""
    params = [p for p in vlm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, fused=device.type == "cuda")
    batch = on_device(make_batch(vlm, micro_batch), device)

    def step(b: dict[str, Any]) -> None:
        stage_loss(vlm, b, stage).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    set_checkpointing(vlm.llm, False)
    one = on_device(make_batch(vlm, 1), device)
    flops = count_call(lambda: step(one), [], Env(real=True, device=device), grad=True) * micro_batch
    set_checkpointing(vlm.llm, True)
    step(batch)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    dt = (time.perf_counter() - t0) / steps
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    grid = vlm.vision.config.image_size // vlm.vision.config.patch_size
    # Sequence tokens the LLM sees: text positions, each image placeholder expanded to grid * grid tokens.
    placeholders = int((batch["input_ids"] == IMAGE_TOKEN_INDEX).sum())
    tokens = (int(batch["attention_mask"].sum()) + placeholders * (grid * grid - 1)) // micro_batch
    return StepResult(micro_batch / dt, micro_batch * tokens / dt, dt, flops, peak, micro_batch, tokens)
