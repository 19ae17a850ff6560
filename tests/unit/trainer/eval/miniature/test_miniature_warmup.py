"""The LM warm-up's folder loads through the project's loader as `model.llm.checkpoint`, tokenizer intact."""

import json
import os

import torch
from safetensors.torch import load_file

from trainer.config.sections import LlmConfig
from trainer.eval.miniature.warmup import WarmupConfig, is_done, warm_up_llm
from trainer.models import tiny
from trainer.models.loading import load_llm

TEXTS = ["a red circle on a noisy background.", "the red circle [0.10, 0.20, 0.40, 0.50]",
         "a blue square and a green triangle on a striped background.", "the small shape [0.55, 0.05, 0.80, 0.30]"]
CFG = WarmupConfig(steps=6, batch_size=4, lr=1e-2, max_length=16, hidden_size=32, layers=1)


def test_warmed_up_llm_loads_with_the_tiny_tokenizer_unchanged(tmp_path):
    folder = str(tmp_path / "warmup")
    loss = warm_up_llm(CFG, TEXTS, folder, seed=0)
    assert loss == loss and is_done(folder, CFG, 0) and not is_done(folder, CFG, 1)
    model, tokenizer = load_llm(LlmConfig(checkpoint=folder))
    reference = tiny.tiny_tokenizer()
    # the whole backend (no truncation/padding left over from the warm-up's batching) and the special tokens
    assert json.loads(tokenizer.backend_tokenizer.to_str()) == json.loads(reference.backend_tokenizer.to_str())
    ids = (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.unk_token_id)
    assert ids == (1, 2, 3, 0)
    long = " ".join(TEXTS * 10) + "</s><pad>"
    assert tokenizer(long)["input_ids"] == reference(long)["input_ids"] and len(tokenizer(long)["input_ids"]) > 64
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 1
    saved = load_file(os.path.join(folder, "model.safetensors"))
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items() if k in saved)


def test_warm_up_is_deterministic_per_seed_and_learns(tmp_path):
    weights = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        warm_up_llm(CFG, TEXTS, str(tmp_path / name), seed=seed)
        weights.append(load_file(str(tmp_path / name / "model.safetensors")))
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])
    cfg = CFG.model_copy(update={"steps": 40})
    first = warm_up_llm(cfg.model_copy(update={"steps": 1}), TEXTS, str(tmp_path / "d"), seed=0)
    last = warm_up_llm(cfg, TEXTS, str(tmp_path / "e"), seed=0)
    assert last < 0.5 * first  # four texts are learned by heart
