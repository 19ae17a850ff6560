"""bench/gpu.py's training sections on PAD's real path: `TrainingEngine` (DeepSpeed) and `pad pretrain` / `pad sft`.

`time_engine_steps` runs the 7B setting of bench/gpu_train.py (the same VLM, batches and losses) through
PAD's own `TrainingEngine` in a one-rank process group (NCCL on CUDA, gloo on the CPU): stage 1 on
`cluster/deepspeed/zero2.json`, stage 2 on `zero3.json`, with DeepSpeed's `torch_adam: true` (the shipped
default, which works on the CPU too) or its fused Adam (`torch_adam: false`, JIT-built with the machine's
nvcc and ninja; CUDA only). `end_to_end` runs `pad pretrain` then `pad sft` on the demo manifests (a
synthetic stage-1 build, the demo conversations) and loads the stage-2 HF export on the device.
DeepSpeed and hjson travel to the GPU image as wheels (bench/gpu_wheels.sh).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from gpu_train import StepResult, on_device, set_checkpointing, stage_loss

from trainer.models.vlm import PatchAlignedVLM
from trainer.training.launch import one_local_rank

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEEPSPEED_JSON = {1: "cluster/deepspeed/zero2.json", 2: "cluster/deepspeed/zero3.json"}


@dataclass
class EngineRun:
    stage: int
    torch_adam: bool = True


def engine_config(run: EngineRun, micro_batch: int, device: torch.device) -> dict[str, Any]:
    """The shipped DeepSpeed JSON of the stage, resolved as `pad pretrain` / `pad sft` resolve it."""
    from trainer.training.engine import read_deepspeed_json, resolve_deepspeed_config

    raw = read_deepspeed_json(os.path.join(REPO, DEEPSPEED_JSON[run.stage]))
    raw["optimizer"]["params"]["torch_adam"] = run.torch_adam
    return resolve_deepspeed_config(raw, micro_batch=micro_batch, grad_accum=1, world=1, lr=1e-5,
                                    weight_decay=0.0, grad_clip=1.0, bf16=device.type == "cuda")


def time_engine_steps(vlm: PatchAlignedVLM, make_batch: Callable[..., dict[str, Any]], run: EngineRun,
                      micro_batch: int, steps: int, device: torch.device, flops_per_step: float) -> StepResult:
    """`steps` timed optimizer steps of `TrainingEngine` after one warm-up (checkpointing on, as trained)."""
    from trainer.training.engine import TrainingEngine, init_distributed

    with one_local_rank():
        init_distributed("nccl" if device.type == "cuda" else "gloo")
        engine = TrainingEngine(vlm, engine_config(run, micro_batch, device), lambda _: 1.0)
        batch = on_device(make_batch(vlm, micro_batch), engine.device)

        def step() -> None:
            engine.backward(stage_loss(engine.forward, batch, run.stage))
            engine.step()

        set_checkpointing(vlm.llm, True)
        step()  # warm-up (and, for the fused Adam, its JIT build)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        dt = (time.perf_counter() - t0) / steps
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        tokens = _tokens_per_sample(vlm, batch, micro_batch)
    return StepResult(micro_batch / dt, micro_batch * tokens / dt, dt, flops_per_step, peak, micro_batch, tokens)


def _tokens_per_sample(vlm: PatchAlignedVLM, batch: dict[str, Any], micro_batch: int) -> int:
    from gpu_train import IMAGE_TOKEN_INDEX

    grid = vlm.vision.config.image_size // vlm.vision.config.patch_size
    placeholders = int((batch["input_ids"] == IMAGE_TOKEN_INDEX).sum())
    return (int(batch["attention_mask"].sum()) + placeholders * (grid * grid - 1)) // micro_batch


def end_to_end(device: torch.device, steps: int) -> dict[str, Any]:
    """`pad pretrain` -> `pad sft` (demo manifests, `steps` steps each) -> the HF export generating on `device`.

    Returns the seconds of each part and where the export's logits were computed."""
    from pad_pipeline.dataset.synthetic import random_field_build
    from trainer.training.driver import run_pretrain as pretrain
    from trainer.training.driver import run_sft as sft

    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="pad-bench-e2e-") as tmp:
        data, stage1, stage2 = (os.path.join(tmp, n) for n in ("pad", "stage1", "stage2"))
        random_field_build(data, num_samples=16, shard_size=8)
        common = [f"train.max_steps={steps}", "train.progress=false", "train.tensorboard=false", "launch.mode=local",
                  "data.num_workers=1"]
        t0 = time.perf_counter()
        pretrain(os.path.join(REPO, "manifests/pretrain-demo.yaml"),
                 [f"data.path={data}", f"train.output_dir={stage1}", *common])
        seconds["pretrain"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        sft(os.path.join(REPO, "manifests/sft-demo.yaml"),
            [f"init.projector={stage1}", f"train.output_dir={stage2}", "export.formats=[hf]",
             f"data.path={REPO}/manifests/demo/conversations.json",
             f"data.image_folder={REPO}/manifests/demo/images", *common])
        seconds["sft"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        where = _generate_from_export(os.path.join(stage2, "export-hf"), device)
        seconds["load+generate"] = time.perf_counter() - t0
    return {"seconds": seconds, "device": where}


def _generate_from_export(folder: str, device: torch.device) -> str:
    import numpy as np
    from PIL import Image
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = LlavaForConditionalGeneration.from_pretrained(folder, dtype=dtype).to(device).eval()
    processor = AutoProcessor.from_pretrained(folder)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8))
    prompt = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"},
                                                                         {"type": "text", "text": "What is it?"}]}],
                                           add_generation_prompt=True)
    inputs = processor(images=image, text=prompt, return_tensors="pt").to(device)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=4, do_sample=False, output_logits=True,
                             return_dict_in_generate=True)
    return str(out.logits[0].device)
