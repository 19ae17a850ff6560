"""LM warm-up: the tiny Llama trained as a causal language model on the scenes' text before stage 1.

A random LLM's word embeddings mean nothing, so aligning vision tokens to them (Table 3's Align, the patch
loss) or reading them (stage 2) tests little. A real LLM arrives pretrained; this gives the miniature's LLM
the same start: `warm_up_llm(cfg, texts, folder, seed)` trains a fresh Llama of `cfg`'s size, with the tiny
preset's tokenizer, on `texts` (captions, referring expressions, REC answers) and writes it with
`save_pretrained` (model and tokenizer) to `folder`, which `model.llm.checkpoint: folder` then loads through
`trainer.models.loading.load_llm`. A plain torch loop on the CPU; deterministic per seed. `warmup.json`,
written last, records the config and the final loss, and marks the folder complete.
"""

from __future__ import annotations

import math
import os
import sys

import torch
from transformers import LlamaForCausalLM

from pad_pipeline.core.runtime import set_seed
from trainer.eval.miniature.marker import is_marked, write_marker
from trainer.eval.miniature.scenes import RecScene
from trainer.eval.miniature.warmup_config import WarmupConfig
from trainer.eval.miniature.writers import rec_answer
from trainer.models import tiny

DONE_FILE = "warmup.json"


def scene_texts(scenes: list[RecScene]) -> list[str]:
    """The corpus: captions, and each expression followed by its answer (the language later stages use)."""
    return ([s.scene.caption for s in scenes]
            + [f"{expression} {rec_answer(s, shape)}" for s in scenes for shape, expression in s.expressions])


def _batch(tokenizer, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
    enc = tokenizer([t + tokenizer.eos_token for t in texts], padding=True, truncation=True,
                    max_length=max_length, return_tensors="pt")
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels}


def _lr_at(step: int, total: int, peak: float) -> float:
    warm = max(1, total // 20)
    if step < warm:
        return peak * (step + 1) / warm
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def is_done(folder: str, cfg: WarmupConfig, seed: int) -> bool:
    return is_marked(os.path.join(folder, DONE_FILE), cfg, seed)


def warm_up_llm(cfg: WarmupConfig, texts: list[str], folder: str, seed: int) -> float:
    """Train and save the LLM; returns the mean loss of the last 10% of steps (nan with 0 steps)."""
    if not texts:
        raise ValueError("the LM warm-up needs at least one text")
    tokenizer = tiny.tiny_tokenizer()
    set_seed(seed)
    model = LlamaForCausalLM(tiny.tiny_llama_config(len(tokenizer), cfg.hidden_size, cfg.layers))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    order = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    model.train()
    for step in range(cfg.steps):
        pick = torch.randint(len(texts), (cfg.batch_size,), generator=order).tolist()
        loss = model(**_batch(tokenizer, [texts[i] for i in pick], cfg.max_length)).loss
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, cfg.steps, cfg.lr)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
        if (step + 1) % max(1, cfg.steps // 4) == 0:
            print(f"LM warm-up: step {step + 1}/{cfg.steps} loss {losses[-1]:.3f}", file=sys.stderr)
    tail = losses[-max(1, len(losses) // 10):]
    final = sum(tail) / len(tail) if tail else float("nan")
    os.makedirs(folder, exist_ok=True)
    model.eval().save_pretrained(folder)
    # A fresh tokenizer: batching above set truncation and padding on this one's backend, and
    # save_pretrained would store them in tokenizer.json, cutting every later text at max_length.
    tiny.tiny_tokenizer().save_pretrained(folder)
    write_marker(os.path.join(folder, DONE_FILE), cfg, seed, texts=len(texts), final_loss=final)
    return final
