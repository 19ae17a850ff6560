"""665K entries: good ones parse into turns; every kind of bad entry is named, never raised."""

import pytest

from trainer.data.chat.conversations import REASONS, BadSample, Conversation, modality_length, parse_entry


def _entry(conversations, image="coco/1.jpg", sid="s1"):
    entry = {"id": sid, "conversations": conversations}
    if image is not None:
        entry["image"] = image
    return entry


def _c(*pairs):
    return [{"from": who, "value": value} for who, value in pairs]


def test_a_multi_turn_image_entry_parses():
    conv = parse_entry(_entry(_c(("human", "<image>\nWhat?"), ("gpt", "A cat."), ("human", "Sure?"),
                                 ("gpt", "Yes."))), 0)
    assert isinstance(conv, Conversation) and conv.id == "s1" and conv.image == "coco/1.jpg"
    assert [t.role for t in conv.turns] == ["human", "gpt", "human", "gpt"]
    assert modality_length(conv) == 6  # LLaVA's: words ("<image>" too) over all turns, positive with an image


def test_a_text_only_entry_parses_with_negative_modality_length():
    conv = parse_entry(_entry(_c(("human", "Hi you"), ("gpt", "Hello.")), image=None), 3)
    assert conv.image is None and modality_length(conv) == -3


@pytest.mark.parametrize(("entry", "reason", "detail"), [
    (["not", "a", "dict"], "not_an_object", "got list"),
    (_entry([]), "empty_conversation", "missing, empty"),
    ({"id": "s1", "image": "a.jpg"}, "empty_conversation", "missing"),
    (_entry([{"from": "system", "value": "x"}]), "bad_turn", "turn 0"),
    (_entry([{"from": "human", "value": 3}]), "bad_turn", "turn 0"),
    (_entry(_c(("gpt", "<image> a"), ("human", "b"))), "not_alternating", "turn 0 is from gpt"),
    (_entry(_c(("human", "<image>"), ("human", "b"))), "not_alternating", "turn 1 is from human"),
    (_entry(_c(("human", "<image> a"), ("gpt", "b"), ("human", "c"))), "not_alternating", "not answered"),
    (_entry(_c(("human", "<image> a"), ("gpt", "  "))), "empty_answer", "gpt turn 1 is empty"),
    (_entry(_c(("human", "a"), ("gpt", "b"))), "image_token_count", "0 <image> in the turns, 1 image"),
    (_entry(_c(("human", "<image> a <image>"), ("gpt", "b"))), "image_token_count", "2 <image>"),
    (_entry(_c(("human", "<image> a"), ("gpt", "b")), image=None), "image_token_count", "1 <image> in the turns, 0"),
    (_entry(_c(("human", "<image> a"), ("gpt", "b <image>"))), "image_token_count", "<image> in gpt turn 1"),
    (_entry(_c(("human", "<image> a"), ("gpt", "b")), image=["a.jpg", "b.jpg"]), "image_token_count", "one"),
    (_entry(_c(("human", "<image> a"), ("gpt", "b</s>c"))), "control_text", "turn 1 contains '</s>'"),
])
def test_each_bad_entry_is_named(entry, reason, detail):
    bad = parse_entry(entry, 7, control=("</s>",))
    assert isinstance(bad, BadSample) and bad.reason == reason and reason in REASONS
    assert detail in bad.detail
    assert bad.id == ("#7" if not isinstance(entry, dict) else "s1")
    assert bad.line().startswith(f"{bad.id}\t{reason}\t")
