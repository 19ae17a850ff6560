"""A conversation entry -> sample (image padded to square with the mean colour, ids with the placeholder),
bad entries returned by name, and the stage-2 collator (text-only rows, blank image, counters)."""

import torch
from torchvision.io import encode_jpeg, encode_png

from trainer.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from trainer.data.chat.conversations import BadSample
from trainer.data.chat.sample import SftSample, SftSampleBuilder
from trainer.data.chat.templates import get_template
from trainer.data.collate import SftCollator
from trainer.data.geometry import ProcessorSpec
from trainer.models.tiny import tiny_image_processor, tiny_tokenizer


def _builder(folder, max_length=1024):
    spec = ProcessorSpec.from_processor(tiny_image_processor(), "pad")
    return SftSampleBuilder(tiny_tokenizer(), get_template("vicuna_v1"), spec, str(folder), max_length, 64)


def _entry(sid, image=None, question="What is it?"):
    value = ("<image>\n" if image else "") + question
    entry = {"id": sid, "conversations": [{"from": "human", "value": value}, {"from": "gpt", "value": "A box."}]}
    return {**entry, "image": image} if image else entry


def test_an_image_entry_is_padded_to_a_square_with_the_mean_colour(tmp_path):
    red = torch.zeros(3, 20, 40, dtype=torch.uint8)
    red[0] = 255
    (tmp_path / "wide.png").write_bytes(encode_png(red).numpy().tobytes())
    sample = _builder(tmp_path)(_entry("a", "wide.png"), 0)
    assert isinstance(sample, SftSample) and sample.pixels.shape == (3, 112, 112)
    fill = torch.tensor([int(m * 255) for m in tiny_image_processor().image_mean], dtype=torch.uint8)
    assert torch.equal(sample.pixels[:, 0, 0], fill) and torch.equal(sample.pixels[:, -1, -1], fill)
    assert torch.equal(sample.pixels[:, 56, 56], torch.tensor([255, 0, 0], dtype=torch.uint8))
    assert sample.input_ids.count(IMAGE_TOKEN_INDEX) == 1 and not sample.truncated


def test_text_only_and_bad_entries(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "ok.jpg").write_bytes(encode_jpeg(torch.zeros(3, 30, 30, dtype=torch.uint8)).numpy().tobytes())
    build = _builder(tmp_path)
    text = build(_entry("t"), 0)
    assert isinstance(text, SftSample) and text.pixels is None
    assert [(b.id, b.reason) for b in (build(_entry("m", "gone.jpg"), 1), build(_entry("d", "bad.jpg"), 2),
                                        build({"id": "x", "conversations": []}, 3),
                                        _builder(tmp_path, max_length=60)(_entry("l", "ok.jpg"), 4))] == [
        ("m", "missing_image"), ("d", "image_decode"), ("x", "empty_conversation"), ("l", "image_truncated")]


def _sample(sid, n, image):
    ids = [1] + ([IMAGE_TOKEN_INDEX] if image else []) + list(range(5, 5 + n))
    labels = [IGNORE_INDEX] * (2 if image else 1) + list(range(5, 5 + n))
    return SftSample(sid, torch.full((3, 8, 8), 7, dtype=torch.uint8) if image else None, ids, labels)


def test_the_collator_pads_keeps_text_only_rows_and_counts():
    collate = SftCollator(pad_token_id=3, image_size=8, image_tokens=4)
    bad = BadSample("b", "no_target", "x")
    batch = collate([_sample("a", 3, True), _sample("t", 5, False), bad])
    assert batch["input_ids"].tolist() == [[1, IMAGE_TOKEN_INDEX, 5, 6, 7, 3], [1, 5, 6, 7, 8, 9]]
    assert batch["labels"][0].tolist() == [IGNORE_INDEX, IGNORE_INDEX, 5, 6, 7, IGNORE_INDEX]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1, 0], [1] * 6]
    assert batch["pixel_values"].shape == (1, 3, 8, 8) and batch["bad"] == [bad]
    assert (int(batch["samples"]), int(batch["skipped_samples"]), int(batch["target_tokens"])) == (2, 1, 8)
    assert int(batch["tokens"]) == 11 + 3  # the image placeholder stands for 4 tokens
    assert int(batch["positions"]) == 2 * 8  # the LLM runs 2 rows of the longest expanded length (5 + 3)


def test_a_text_only_batch_carries_one_blank_image_and_an_all_bad_batch_one_empty_row():
    collate = SftCollator(pad_token_id=3, image_size=8, image_tokens=4)
    text = collate([_sample("t", 2, False)])
    assert text["pixel_values"].shape == (1, 3, 8, 8) and int(text["pixel_values"].sum()) == 0
    empty = collate([BadSample("b", "image_decode", "x")])
    assert empty["input_ids"].tolist() == [[3]] and (empty["labels"] == IGNORE_INDEX).all()
    assert int(empty["samples"]) == 0 and int(empty["skipped_samples"]) == 1 and int(empty["target_tokens"]) == 0
