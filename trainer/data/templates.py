"""LLaVA's `plain` pretraining template: `<image>` + caption + "\n", loss on the caption only.

LLaVA tokenizes `[BOS] <image> caption\n` and masks BOS and the image; here the ids are
`[BOS] + caption ids` and the model splices the vision tokens in right after BOS, so the labels are
the caption ids (the trailing newline included, as LLaVA's `sep`).
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

PLAIN_SEP = "\n"


def plain_caption_ids(tokenizer: PreTrainedTokenizerBase, caption: str, max_caption_tokens: int) -> list[int]:
    """`[BOS] + tokens(caption + sep)`, truncated to `max_caption_tokens` caption tokens."""
    ids = tokenizer(caption.strip() + PLAIN_SEP, add_special_tokens=False).input_ids[:max_caption_tokens]
    bos = tokenizer.bos_token_id
    return ([bos] if bos is not None else []) + ids
