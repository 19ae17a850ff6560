"""Labels from offsets: mismatched tokenisations are caught by name, text is cut but never an image, a
sample with nothing to learn is refused, and stage 1's caption ids are what they always were."""

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from pad_pipeline.core.errors import PadError
from trainer.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from trainer.data.chat.templates import Turn, get_template
from trainer.data.chat.tokens import (
    BadSampleError,
    check_template_tokens,
    encode_chunks,
    label_tokens,
    plain_caption_tokens,
    split_chunks,
    tokenize_conversation,
)
from trainer.models.tiny import tiny_tokenizer

TURNS = [Turn("human", "<image>\nWhat is it?"), Turn("gpt", "yes"), Turn("human", "Sure?"), Turn("gpt", "yes yes")]


def merging_tokenizer(special: bool = True) -> PreTrainedTokenizerFast:
    """A BPE that does not split at spaces, so ":" merges with the space after it (": y" -> ":▁y")."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
    specials = ["<unk>", "<s>", "</s>", "<pad>"] if special else ["<unk>", "<s>", "<pad>"]
    alphabet = [chr(c) for c in range(32, 127)] + ["\n", "\u2581"]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, initial_alphabet=alphabet,
                                  show_progress=False)
    tok.train_from_iterator(["ASSISTANT: yes yes. USER: sure ASSISTANT: yes"] * 50, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", unk_token="<unk>", pad_token="<pad>",
                                   eos_token="</s>" if special else None)


def test_a_token_across_the_answer_boundary_is_a_named_mismatch():
    tok = merging_tokenizer()
    assert any(":\u2581" in t for t in tok.convert_ids_to_tokens(tok("ASSISTANT: yes").input_ids))
    crossing = r"tokenization_mismatch: token '[^']*: y[^']*' at characters \d+-\d+ crosses"
    with pytest.raises(BadSampleError, match=crossing) as e:
        tokenize_conversation(tok, get_template("vicuna_v1"), TURNS, 1024, 4)
    assert e.value.reason == "tokenization_mismatch"


def test_offsets_that_do_not_cover_an_answer_are_a_mismatch():
    """A tokenizer whose offsets drift (here: shifted by hand) would put labels on the wrong tokens."""
    tok = tiny_tokenizer()
    rendered = get_template("vicuna_v1").render(TURNS[:2])
    encoded = encode_chunks(tok, [c for _, c in split_chunks(rendered.text)])
    ids, labels = label_tokens(rendered, encoded, tok.bos_token_id)
    assert sum(label != IGNORE_INDEX for label in labels) > 0  # the honest offsets line up
    cut = [(ids_, offs[:-2]) for ids_, offs in encoded]  # the last two tokens (answer end, "</s>") lost
    cut = [(i[: len(o)], o) for i, o in cut]
    with pytest.raises(BadSampleError, match=r"character \d+ of an answer .* has no token"):
        label_tokens(rendered, cut, tok.bos_token_id)


def test_an_image_placeholder_inside_an_answer_is_a_mismatch():
    tok = tiny_tokenizer()
    rendered = get_template("vicuna_v1").render([Turn("human", "hi"), Turn("gpt", "see <image> here")])
    encoded = encode_chunks(tok, [c for _, c in split_chunks(rendered.text)])
    with pytest.raises(BadSampleError, match="image placeholder at character .* inside an answer"):
        label_tokens(rendered, encoded, tok.bos_token_id)


def test_a_stop_string_that_is_not_one_token_is_refused_before_training():
    check_template_tokens(tiny_tokenizer(), get_template("vicuna_v1"))
    with pytest.raises(PadError, match=r"template 'vicuna_v1': '</s>' is \d+ tokens of this tokenizer"):
        check_template_tokens(merging_tokenizer(special=False), get_template("vicuna_v1"))
    with pytest.raises(PadError, match="'<|start_header_id|>'"):
        check_template_tokens(tiny_tokenizer(), get_template("llama3"))


def test_a_long_sample_is_cut_in_text_and_keeps_its_image_whole():
    tok = tiny_tokenizer()
    full = tokenize_conversation(tok, get_template("vicuna_v1"), TURNS, 10_000, image_tokens=64)
    max_length = len(full.input_ids) + 63 - 5
    cut = tokenize_conversation(tok, get_template("vicuna_v1"), TURNS, max_length, image_tokens=64)
    assert cut.truncated and not full.truncated
    assert len(cut.input_ids) + 63 == max_length  # the image counts as its 64 tokens
    assert cut.input_ids == full.input_ids[:-5] and cut.labels == full.labels[:-5]
    assert IMAGE_TOKEN_INDEX in cut.input_ids


def test_a_sample_whose_image_would_not_fit_is_refused():
    tok = tiny_tokenizer()
    full = tokenize_conversation(tok, get_template("vicuna_v1"), TURNS, 10_000, image_tokens=64)
    image_at = full.input_ids.index(IMAGE_TOKEN_INDEX)
    with pytest.raises(BadSampleError, match=r"image_truncated: 64 image tokens at position \d+ do not fit in "
                                             r"llm.max_length=100"):
        tokenize_conversation(tok, get_template("vicuna_v1"), TURNS, 100, image_tokens=64)
    assert image_at + 64 > 100


def test_a_sample_cut_before_its_first_answer_has_no_target():
    tok = tiny_tokenizer()
    full = tokenize_conversation(tok, get_template("vicuna_v1"), TURNS, 10_000, image_tokens=64)
    first_label = next(i for i, label in enumerate(full.labels) if label != IGNORE_INDEX)
    with pytest.raises(BadSampleError, match="no_target: no answer token left within llm.max_length"):
        tokenize_conversation(tok, get_template("vicuna_v1"), TURNS, first_label + 63, image_tokens=64)


def test_plain_caption_tokens_are_stage_ones_ids():
    tok = tiny_tokenizer()
    caption = "  a dog on the grass near a red car "
    out = plain_caption_tokens(tok, caption, max_caption_tokens=64)
    reference = tok(caption.strip() + "\n", add_special_tokens=False).input_ids  # what stage 1 always used
    assert out.input_ids == [tok.bos_token_id, IMAGE_TOKEN_INDEX] + reference
    assert out.labels == [IGNORE_INDEX, IGNORE_INDEX] + reference
    short = plain_caption_tokens(tok, caption, max_caption_tokens=3)
    assert short.input_ids == [tok.bos_token_id, IMAGE_TOKEN_INDEX] + reference[:3] and short.truncated
