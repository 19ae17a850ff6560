"""Tiny random presets (`checkpoint: tiny-random`): the real classes at toy sizes, built offline.

Tests and the demo manifest use these instead of downloads: a CLIP vision tower (112 px, 14 px
patches -> an 8 x 8 grid), its image processor, a Llama causal LM and a BPE tokenizer trained in
code on a fixed word list (so tags split into several sub-tokens, as with real tokenizers). All are
deterministic: weights come from the global torch generator seeded with `seed`
(`pad_pipeline.core.runtime.set_seed`), the tokenizer from a fixed corpus.
"""

from __future__ import annotations

import functools

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    CLIPVisionModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from pad_pipeline.core.runtime import set_seed

TINY_IMAGE_SIZE = 112
TINY_PATCH_SIZE = 14

# A fixed corpus: common RAM tags and caption words. Its order is part of the tokenizer's identity.
_WORDS = (
    "a an the of in on at with and to is are sky water tree grass person man woman child dog cat car "
    "road building house window door table chair cup plate food bird flower mountain river beach sand "
    "cloud sun snow rock field street sign light boat bus train bicycle horse cow sheep red blue green "
    "white black yellow brown small large old new standing sitting walking near under over front "
    "background photo picture image view close up day night sunny canyon cliff wall reflects utah "
    "ellipse rectangle shape square circle stripe pattern texture"
).split()


def _corpus() -> list[str]:
    lines = []
    for i, w in enumerate(_WORDS):
        lines.append(f"{w} {_WORDS[(i * 7 + 3) % len(_WORDS)]} {_WORDS[(i * 11 + 5) % len(_WORDS)]}.\n")
    return lines


@functools.lru_cache(maxsize=1)
def _tokenizer_json() -> str:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
    alphabet = [chr(c) for c in range(32, 127)] + ["\n", "\u2581"]
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
                                  initial_alphabet=alphabet, show_progress=False)
    tok.train_from_iterator(_corpus(), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return tok.to_str()


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A Llama-like tokenizer (BOS `<s>` = 1, Metaspace pieces) built in code."""
    tok = Tokenizer.from_str(_tokenizer_json())
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>")


def tiny_image_processor() -> CLIPImageProcessor:
    return CLIPImageProcessor(size={"shortest_edge": TINY_IMAGE_SIZE},
                              crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE})


def tiny_vision_config() -> CLIPVisionConfig:
    return CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                            image_size=TINY_IMAGE_SIZE, patch_size=TINY_PATCH_SIZE, projection_dim=32)


def tiny_llama_config(vocab_size: int, hidden_size: int = 64, layers: int = 2) -> LlamaConfig:
    return LlamaConfig(vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                       num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                       max_position_embeddings=1024, bos_token_id=1, eos_token_id=2, pad_token_id=3,
                       tie_word_embeddings=False)


def tiny_vision_model(seed: int = 0) -> CLIPVisionModel:
    set_seed(seed)
    return CLIPVisionModel(tiny_vision_config()).eval()


def tiny_llm(vocab_size: int, seed: int = 1) -> LlamaForCausalLM:
    set_seed(seed)
    return LlamaForCausalLM(tiny_llama_config(vocab_size))
