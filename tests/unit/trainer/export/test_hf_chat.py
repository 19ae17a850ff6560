"""The exported chat template makes the processor give the ids training gave (the text after <image>)."""

from trainer.data.chat.jinja import jinja_for
from trainer.data.chat.templates import get_template
from trainer.export.hf import tokenizer_with_image_token
from trainer.export.hf_chat import exported_chat_template, processor_ids, training_ids
from trainer.models import tiny


def test_vicuna_export_tokenizes_as_training_where_the_plain_jinja_does_not():
    tokenizer = tiny.tiny_tokenizer()
    with_image, image_id = tokenizer_with_image_token(tokenizer)
    template = get_template("vicuna_v1")
    wanted = training_ids(template, tokenizer)
    naive = processor_ids(jinja_for(template), with_image, image_id)
    assert naive != wanted  # the tiny Metaspace tokenizer starts no `▁` after a special token
    exported = exported_chat_template("vicuna_v1", tokenizer)
    assert processor_ids(exported, with_image, image_id) == wanted
    assert "<image> \\n" in exported


def test_plain_export_keeps_the_bare_image_prompt():
    assert exported_chat_template("plain", tiny.tiny_tokenizer()) == jinja_for(get_template("plain"))
