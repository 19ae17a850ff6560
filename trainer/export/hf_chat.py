"""The chat template an HF export ships: one whose prompts tokenize to the ids the model was trained on.

Training tokenizes the text between image placeholders chunk by chunk (LLaVA's `tokenizer_image_token`
does the same), so a Metaspace/SentencePiece tokenizer starts the chunk after `<image>` with its word-start
piece `▁`. A transformers processor tokenizes the whole prompt at once with `<image>` as a special token,
and many tokenizers (PAD's tiny one, Llama's in transformers 5) do not start the text after a special token
with `▁`: the same conversation then reaches the exported model as other ids than in training (measured on
the demo: a different first answer token). `exported_chat_template` renders a probe conversation with the
template's Jinja, tokenizes it as the processor will, and compares with training's ids; when they differ it
writes `<image> ` (a space, which Metaspace turns into that `▁`) and checks again. A template neither form
reproduces is refused in one line rather than exported with prompts the model never saw.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from transformers import PreTrainedTokenizerBase

from pad_pipeline.core.errors import PadError
from trainer.constants import IMAGE_TOKEN, IMAGE_TOKEN_INDEX
from trainer.data.chat.jinja import jinja_for
from trainer.data.chat.templates import ConversationTemplate, Turn, get_template
from trainer.data.chat.tokens import tokenize_conversation
from trainer.export.hf import tokenizer_with_image_token

PROBE = [Turn("human", f"{IMAGE_TOKEN}\nwhat is in the image?"), Turn("gpt", "a red circle on the left.")]


def _messages() -> Any:  # transformers' message format (content as typed items), which its stubs type narrower
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what is in the image?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "a red circle on the left."}]}]


def processor_ids(jinja: str, tokenizer: PreTrainedTokenizerBase, image_token_id: int) -> list[int]:
    """The ids a processor gives the probe rendered by `jinja` (its `<image>` run collapsed to one placeholder)."""
    text = tokenizer.apply_chat_template(_messages(), chat_template=jinja, tokenize=False)
    ids = tokenizer(str(text), add_special_tokens=True).input_ids
    return [IMAGE_TOKEN_INDEX if i == image_token_id else int(i) for i in ids]


def training_ids(template: ConversationTemplate, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    return tokenize_conversation(tokenizer, template, PROBE, 4096, 1).input_ids


def exported_chat_template(name: str, tokenizer: PreTrainedTokenizerBase) -> str:
    """The Jinja of template `name` whose prompts `tokenizer` (+ `<image>`) turns into training's ids."""
    template = get_template(name)
    if template.image_only_user:
        # `plain`: a prompt is the image alone and the answer's first piece (with its `▁`) is generated, as in
        # training; only a teacher-forced caption would tokenize differently, which consumers do not do.
        return jinja_for(template)
    with_image, image_token_id = tokenizer_with_image_token(tokenizer)
    wanted = training_ids(template, tokenizer)
    spaced = replace(template, image_prefix=IMAGE_TOKEN + " " + template.image_prefix[len(IMAGE_TOKEN):])
    for candidate in (template, spaced):
        jinja = jinja_for(candidate)
        if processor_ids(jinja, with_image, image_token_id) == wanted:
            return jinja
    raise PadError(f"template {name!r}: no chat template makes this tokenizer give the ids training gave "
                   f"(the text after <image> tokenizes differently); export with `pad export --format llava`")
