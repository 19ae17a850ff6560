"""A `ConversationTemplate` as the Jinja `chat_template` transformers' tokenizers and processors render.

`jinja_for(template)` composes the Jinja from the template's own fields (formats, stop, image prefix, strip),
so `apply_chat_template(messages)` gives the same text as `template.render(turns)` (tested). Messages are in
transformers' format: `{"role": "system"|"user"|"assistant", "content": str | [{"type": "image"},
{"type": "text", "text": ...}]}`; image items render as the template's image prefix ("<image>\\n") before the
text, as LLaVA moves `<image>` to the front of a turn. The text is what follows BOS: the tokenizer adds BOS
(`add_special_tokens=True`, a processor's default) as in training. `add_generation_prompt` renders the
assistant prefix ("ASSISTANT:" for vicuna_v1).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trainer.data.chat.templates import ConversationTemplate


def _lit(text: str) -> str:
    return json.dumps(text)


def _split(fmt: str, field: str) -> tuple[str, str]:
    before, _, after = fmt.partition("{" + field + "}")
    return before, after


def _content(t: ConversationTemplate, role_is_user: str) -> str:
    """Jinja that sets `c.text` to a message's content (string, or image items then text items)."""
    images = (f"{{%- for item in message['content'] -%}}{{%- if item['type'] == 'image' -%}}"
              f"{{%- set c.text = c.text + {_lit(t.image_prefix)} -%}}{{%- endif -%}}{{%- endfor -%}}")
    text_items = ("{%- for item in message['content'] -%}{%- if item['type'] == 'text' -%}"
                  "{%- set c.text = c.text + item['text'] -%}{%- endif -%}{%- endfor -%}")
    if t.image_only_user:  # plain: a user turn is its image alone
        text_items = f"{{%- if not ({role_is_user}) -%}}{text_items}{{%- endif -%}}"
    strip = "{%- set c.text = c.text | trim -%}" if t.strip else ""
    return ("{%- set c = namespace(text='') -%}{%- if message['content'] is string -%}"
            "{%- set c.text = message['content'] -%}{%- else -%}" + images + text_items + "{%- endif -%}" + strip)


def jinja_for(t: ConversationTemplate) -> str:
    user_before, user_after = _split(t.user_format, "content")
    answer_before, answer_after = _split(t.assistant_format, "content")
    sys_before, sys_after = _split(t.system_format, "system")
    parts = []
    if t.system_format:
        parts += [f"{{%- set ns = namespace(system={_lit(t.system)}) -%}}",
                  "{%- for message in messages -%}{%- if message['role'] == 'system' -%}",
                  _content(t, "false"), "{%- set ns.system = c.text -%}{%- endif -%}{%- endfor -%}",
                  f"{{{{- {_lit(sys_before)} + ns.system + {_lit(sys_after)} -}}}}"]
    parts += ["{%- for message in messages -%}", _content(t, "message['role'] == 'user'"),
              f"{{%- if message['role'] == 'user' -%}}{{{{- {_lit(user_before)} + c.text + {_lit(user_after)} -}}}}",
              f"{{%- elif message['role'] == 'assistant' -%}}{{{{- {_lit(t.assistant_prefix + answer_before)} + c.text"
              f" + {_lit(answer_after + t.stop)} -}}}}",
              "{%- endif -%}{%- endfor -%}",
              f"{{%- if add_generation_prompt -%}}{{{{- {_lit(t.generation_prompt)} -}}}}{{%- endif -%}}"]
    return "".join(parts)
