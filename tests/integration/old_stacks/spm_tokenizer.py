"""Run in LLaVA's stack: a Vicuna-like tokenizer (a sentencepiece BPE model, as `tokenizer.model`) and its
reading by transformers 4.37 the two ways LLaVA's users load it.

usage: spm_tokenizer.py train CORPUS.txt OUT_DIR   (writes tokenizer.model and vocab_merges.json)
       spm_tokenizer.py ids FOLDER TEXTS.json OUT.json   (ids from the slow and the fast tokenizer)
"""

import json
import os
import sys

import sentencepiece
from transformers import AutoTokenizer, LlamaTokenizerFast


def train(corpus: str, out: str) -> None:
    sentencepiece.SentencePieceTrainer.train(
        input=corpus, model_prefix=os.path.join(out, "tokenizer"), vocab_size=300, model_type="bpe",
        character_coverage=1.0, byte_fallback=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        normalization_rule_name="identity", hard_vocab_limit=False, minloglevel=2)
    fast = LlamaTokenizerFast.from_pretrained(out, from_slow=True, legacy=False)  # 4.37's own conversion
    model = json.loads(fast.backend_tokenizer.to_str())["model"]
    with open(os.path.join(out, "vocab_merges.json"), "w") as f:
        json.dump({"vocab": model["vocab"], "merges": model["merges"]}, f)


def ids(folder: str, texts: str, out: str) -> None:
    with open(texts) as f:
        lines = json.load(f)
    got = {}
    for fast in (False, True):
        tokenizer = AutoTokenizer.from_pretrained(folder, use_fast=fast)
        got[type(tokenizer).__name__] = [tokenizer(t).input_ids for t in lines]
    with open(out, "w") as f:
        json.dump(got, f)


if __name__ == "__main__":
    {"train": train, "ids": ids}[sys.argv[1]](*sys.argv[2:])
