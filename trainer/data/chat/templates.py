"""Conversation templates as data: how turns become one text, and which characters of it carry the loss.

`TEMPLATES` is the registry (`plain`, `vicuna_v1`, `llama3`); `get_template(name)` returns a
`ConversationTemplate`. `template.render(turns, has_image)` gives the text after BOS and its loss spans
(character ranges); `trainer.data.chat.tokens` tokenises that text once and labels the tokens inside the
spans. Each template also carries `chat_template`, a Jinja string built from the same fields, so an exported
processor's `apply_chat_template` renders exactly this text.

- `plain` (LLaVA's stage 1): `<image>` + caption + "\n"; loss on the caption and "\n".
- `vicuna_v1` (LLaVA's conv_vicuna_v1): "SYSTEM USER: q ASSISTANT: a</s>USER: ..."; loss on " a</s>"
  (the space after "ASSISTANT:" too, as LLaVA's preprocess_v1, whose instruction length drops that piece).
- `llama3` (Llama-3/3.1 chat): header `<|start_header_id|>role<|end_header_id|>\n\n`, content stripped,
  `<|eot_id|>`; loss on assistant content + `<|eot_id|>`.
A human turn holding `<image>` becomes "<image>\n" + the rest stripped (LLaVA's preprocess_multimodal).
Pure Python (no torch, no transformers), so a manifest's `data.template` is checked cheaply at load.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from pad_pipeline.core.registry import Registry
from trainer.constants import IMAGE_TOKEN

ROLES = ("human", "gpt")

TEMPLATES = Registry("template", {
    "plain": "trainer.data.chat.templates:plain_template",
    "vicuna_v1": "trainer.data.chat.templates:vicuna_v1_template",
    "llama3": "trainer.data.chat.templates:llama3_template",
})


@dataclass(frozen=True)
class Turn:
    role: str   # "human" or "gpt" (the 665K names)
    value: str


@dataclass(frozen=True)
class Rendered:
    text: str                               # everything after BOS
    loss_spans: tuple[tuple[int, int], ...]  # [start, end) character ranges whose tokens carry the loss


@dataclass(frozen=True)
class ConversationTemplate:
    """A chat format as data. Text = system_format(system) + per turn: user_format(content) or
    assistant_prefix + [assistant_format(content) + stop] (the bracket carries the loss)."""

    name: str
    system: str = ""
    system_format: str = "{system}"
    user_format: str = "{content}"
    assistant_prefix: str = ""
    assistant_format: str = "{content}"
    stop: str = ""
    image_prefix: str = IMAGE_TOKEN + "\n"   # what a human turn with an image starts with
    strip: bool = False                      # strip every content (llama3's `| trim`)
    image_only_user: bool = False            # plain: the human turn is the image alone
    control: tuple[str, ...] = ()            # strings that must be one token each and never appear in content

    def content(self, turn: Turn) -> str:
        value = turn.value
        if turn.role == "human" and IMAGE_TOKEN in value:
            value = IMAGE_TOKEN if self.image_only_user else self.image_prefix + value.replace(IMAGE_TOKEN, "").strip()
        return value.strip() if self.strip else value

    def render(self, turns: list[Turn]) -> Rendered:
        parts = [self.system_format.format(system=self.system)] if self.system_format else []
        length, spans = len(parts[0]) if parts else 0, []
        for turn in turns:
            if turn.role == "human":
                piece = self.user_format.format(content=self.content(turn))
                parts.append(piece)
                length += len(piece)
                continue
            answer = self.assistant_format.format(content=self.content(turn)) + self.stop
            parts += [self.assistant_prefix, answer]
            start = length + len(self.assistant_prefix)
            spans.append((start, start + len(answer)))
            length = start + len(answer)
        return Rendered("".join(parts), tuple(spans))

    @property
    def generation_prompt(self) -> str:
        """What an exported chat template appends for generation (LLaVA prompts end with "ASSISTANT:")."""
        return self.assistant_prefix


def plain_template() -> ConversationTemplate:
    return ConversationTemplate(name="plain", system_format="", assistant_format="{content}", stop="\n",
                                image_prefix=IMAGE_TOKEN, strip=True, image_only_user=True)


VICUNA_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives "
                 "helpful, detailed, and polite answers to the user's questions.")


def vicuna_v1_template() -> ConversationTemplate:
    return ConversationTemplate(name="vicuna_v1", system=VICUNA_SYSTEM, system_format="{system} ",
                                user_format="USER: {content} ", assistant_prefix="ASSISTANT:",
                                assistant_format=" {content}", stop="</s>", control=("</s>",))


LLAMA3_SYSTEM = ("You are a helpful language and vision assistant. You are able to understand the visual content "
                 "that the user provides, and assist the user with a variety of tasks using natural language.")
_HEADER = "<|start_header_id|>{role}<|end_header_id|>\n\n"


def llama3_template() -> ConversationTemplate:
    return ConversationTemplate(
        name="llama3", system=LLAMA3_SYSTEM,
        system_format=_HEADER.format(role="system") + "{system}<|eot_id|>",
        user_format=_HEADER.format(role="user") + "{content}<|eot_id|>",
        assistant_prefix=_HEADER.format(role="assistant"), assistant_format="{content}", stop="<|eot_id|>",
        strip=True, control=("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|begin_of_text|>"))


@functools.lru_cache(maxsize=None)
def get_template(name: str) -> ConversationTemplate:
    """The template `name` (one of TEMPLATES.names())."""
    return TEMPLATES.get(name)()
