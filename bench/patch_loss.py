"""Patch-loss overhead: optimizer-step time with beta > 0 over beta = 0 (and over caption-only), on CPU.

Same model each time: a random ~100M-parameter Llama, a small random CLIP tower at 336 px (576 tokens),
the mlp2x_gelu projector; micro-batch of real collated PAD-like samples (several regions each).
Steps are interleaved across the three settings and the median is reported.
Usage: python bench/patch_loss.py [--steps 6] [--batch 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlamaForCausalLM

from pad_pipeline.dataset.reader import iter_committed_samples
from pad_pipeline.dataset.synthetic import random_field_build
from trainer.data.collate import PatchCollator
from trainer.data.geometry import ProcessorSpec
from trainer.data.patches.sample import PatchSampleBuilder
from trainer.models.losses import total_loss
from trainer.models.projectors import build_projector
from trainer.models.tiny import tiny_tokenizer
from trainer.models.vlm import PatchAlignedVLM


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=2)
    args = ap.parse_args()
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    tok = tiny_tokenizer()
    llm = LlamaForCausalLM(LlamaConfig(vocab_size=32000, hidden_size=768, intermediate_size=2048, num_hidden_layers=8,
                                       num_attention_heads=12, num_key_value_heads=12, max_position_embeddings=2048))
    llm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    vision = CLIPVisionModel(CLIPVisionConfig(hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                                              num_attention_heads=4, image_size=336, patch_size=14))
    model = PatchAlignedVLM(vision, build_projector("mlp2x_gelu", 128, 768), llm).train()
    n_params = sum(p.numel() for p in llm.parameters())
    opt = torch.optim.AdamW(model.projector.parameters(), lr=1e-3)

    processor = CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
    with tempfile.TemporaryDirectory() as out:
        random_field_build(out, args.batch, shard_size=args.batch, min_side=320, max_side=480)
        builder = PatchSampleBuilder(tok, ProcessorSpec.from_processor(processor), grid=24, max_caption_tokens=64)
        batch = PatchCollator(tok.pad_token_id)([builder(s) for s in iter_committed_samples(out)])

    def step(mode: str) -> float:
        start = time.perf_counter()
        out = model(batch, with_patch_loss=mode != "caption-only")
        beta = 5.0 if mode == "beta=5" else 0.0
        if mode == "caption-only":
            loss = out["caption_loss"]
        else:
            loss = total_loss(out["caption_loss"], out["patch_loss"], beta)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    modes = ["caption-only", "beta=0", "beta=5"]
    for m in modes:
        step(m)  # warm-up
    times: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(args.steps):
        for m in modes:
            times[m].append(step(m))
    med = {m: statistics.median(v) for m, v in times.items()}
    print(f"patch loss: LLM {n_params / 1e6:.0f}M params, batch {args.batch}, {int(batch['regions'])} regions, "
          f"seq {batch['input_ids'].shape[1] + 576} tokens, {torch.get_num_threads()} threads")
    for m in modes:
        print(f"  {m:13s} median step {med[m] * 1000:.0f} ms  (min {min(times[m]) * 1000:.0f} ms)")
    print(f"  ratio beta=5 / beta=0: {med['beta=5'] / med['beta=0']:.3f}; "
          f"beta=5 / caption-only: {med['beta=5'] / med['caption-only']:.3f} (target <= 1.03)")


if __name__ == "__main__":
    main()
