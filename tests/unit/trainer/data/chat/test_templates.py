"""Templates: the rendered text, exactly which tokens carry loss (vicuna_v1, llama3, plain), LLaVA's own
preprocess_v1 masking as a reference, and the Jinja chat template rendering the same text in transformers."""

import pytest
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from pad_pipeline.core.errors import ConfigError
from trainer.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from trainer.data.chat.jinja import jinja_for
from trainer.data.chat.templates import TEMPLATES, VICUNA_SYSTEM, Turn, get_template
from trainer.data.chat.tokens import tokenize_conversation
from trainer.models.tiny import tiny_tokenizer

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]

MULTI_TURN = [Turn("human", "What is this?\n<image>"), Turn("gpt", "A dog."), Turn("human", "Color?"),
              Turn("gpt", "Brown 12")]
TEXT_ONLY = [Turn("human", "Hi there"), Turn("gpt", "Hello."), Turn("human", "Bye"), Turn("gpt", "See you")]
HF_MULTI_TURN = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]},
                 {"role": "assistant", "content": "A dog."}, {"role": "user", "content": "Color?"},
                 {"role": "assistant", "content": "Brown 12"}]


def llama3_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE with Llama-3's split pattern and chat special tokens, trained in code."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    corpus = ["What is this? A dog. Color? Brown 12. user assistant system helpful vision assistant\n\n"] * 20
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=LLAMA3_SPECIAL,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                        show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
                                   pad_token="<|end_of_text|>")


def _loss_runs(tokenizer, ids: list[int], labels: list[int]) -> list[list[str]]:
    """The tokens carrying loss, as contiguous runs of token strings; labels equal ids there."""
    runs, current = [], []
    for i, (t, label) in enumerate(zip(ids, labels, strict=True)):
        if label != IGNORE_INDEX:
            assert label == t, f"position {i}: label {label} is not the token {t}"
            current.append(tokenizer.convert_ids_to_tokens(t))
        elif current:
            runs.append(current)
            current = []
    return runs + ([current] if current else [])


def test_vicuna_v1_renders_llava_conv_vicuna_v1():
    text = get_template("vicuna_v1").render(MULTI_TURN).text
    assert text == (f"{VICUNA_SYSTEM} USER: <image>\nWhat is this? ASSISTANT: A dog.</s>USER: Color? "
                    "ASSISTANT: Brown 12</s>")


def test_vicuna_v1_loss_is_on_each_answer_and_its_eos_only():
    tok = tiny_tokenizer()
    out = tokenize_conversation(tok, get_template("vicuna_v1"), MULTI_TURN, 1024, image_tokens=64)
    assert out.input_ids[0] == tok.bos_token_id and out.input_ids.count(IMAGE_TOKEN_INDEX) == 1
    # LLaVA's preprocess_v1 drops the piece of the space after "ASSISTANT:" from the instruction: it carries loss.
    assert _loss_runs(tok, out.input_ids, out.labels) == [["▁", "A", "▁dog", ".", "</s>"],
                                                          ["▁", "B", "row", "n", "▁", "1", "2", "</s>"]]


def test_vicuna_v1_text_only_conversation():
    tok = tiny_tokenizer()
    out = tokenize_conversation(tok, get_template("vicuna_v1"), TEXT_ONLY, 1024, image_tokens=64)
    assert IMAGE_TOKEN_INDEX not in out.input_ids
    runs = _loss_runs(tok, out.input_ids, out.labels)
    assert ["".join(r).replace("▁", " ") for r in runs] == [" Hello.</s>", " See you</s>"]
    assert sum(len(r) for r in runs) == sum(label != IGNORE_INDEX for label in out.labels)


def llava_preprocess_v1(tokenizer, text: str, legacy: bool) -> tuple[list[int], list[int]]:
    """LLaVA's preprocess_v1 masking (llava/train/train.py) with tokenizer_image_token, as the reference."""
    def image_ids(prompt: str) -> list[int]:
        chunks = [tokenizer(c).input_ids for c in prompt.split("<image>")]
        ids = [chunks[0][0]]
        for k, c in enumerate(chunks):
            ids += ([IMAGE_TOKEN_INDEX] if k else []) + c[1:]
        return ids

    input_ids = image_ids(text)
    target = list(input_ids)
    sep, cur = " ASSISTANT: ", 1
    target[:1] = [IGNORE_INDEX]
    for i, rou in enumerate(text.split("</s>")):
        parts = rou.split(sep)
        if rou == "" or len(parts) != 2:
            break
        round_len, instruction_len = len(image_ids(rou)), len(image_ids(parts[0] + sep)) - 2
        if i != 0 and not legacy:
            round_len, instruction_len = round_len - 1, instruction_len - 1
        target[cur:cur + instruction_len] = [IGNORE_INDEX] * instruction_len
        cur += round_len
    target[cur:] = [IGNORE_INDEX] * (len(target) - cur)
    assert cur == len(input_ids), "LLaVA itself reports a tokenization mismatch here"
    return input_ids, target


@pytest.mark.parametrize("turns", [MULTI_TURN, TEXT_ONLY], ids=["image", "text-only"])
def test_vicuna_v1_matches_llavas_own_masking(turns):
    """The tiny tokenizer splits like a non-legacy Llama tokenizer (no prefix space after </s>)."""
    tok, template = tiny_tokenizer(), get_template("vicuna_v1")
    ours = tokenize_conversation(tok, template, turns, 1024, image_tokens=64)
    ids, labels = llava_preprocess_v1(tok, template.render(turns).text, legacy=False)
    assert ours.input_ids == ids and ours.labels == labels


def test_llama3_loss_is_on_assistant_content_and_eot():
    tok = llama3_tokenizer()
    template = get_template("llama3")
    out = tokenize_conversation(tok, template, MULTI_TURN, 1024, image_tokens=64)
    assert out.input_ids[0] == tok.convert_tokens_to_ids("<|begin_of_text|>")
    runs = _loss_runs(tok, out.input_ids, out.labels)
    assert [tok.convert_tokens_to_string(r) for r in runs] == ["A dog.<|eot_id|>", "Brown 12<|eot_id|>"]
    eot = tok.convert_tokens_to_ids("<|eot_id|>")
    labels = out.labels
    starts = [i for i in range(1, len(labels)) if labels[i] != IGNORE_INDEX and labels[i - 1] == IGNORE_INDEX]
    for s in starts:  # each answer starts right after "<|start_header_id|>assistant<|end_header_id|>\n\n"
        text = tok.decode([t for t in out.input_ids[1:s] if t != IMAGE_TOKEN_INDEX])
        assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert out.input_ids.count(eot) == 5  # system, 2 user, 2 assistant turns; only the assistant ones carry loss
    assert sum(label == eot for label in out.labels) == 2


def test_llama3_text_only_conversation_strips_content():
    tok = llama3_tokenizer()
    turns = [Turn("human", "  Hi there "), Turn("gpt", " Hello. ")]
    out = tokenize_conversation(tok, get_template("llama3"), turns, 1024, image_tokens=64)
    runs = _loss_runs(tok, out.input_ids, out.labels)
    assert [tok.convert_tokens_to_string(r) for r in runs] == ["Hello.<|eot_id|>"]


def test_plain_is_stage_ones_caption_template():
    rendered = get_template("plain").render([Turn("human", "Describe.\n<image>"), Turn("gpt", " a dog ")])
    assert rendered.text == "<image>a dog\n" and rendered.loss_spans == ((7, 13),)


@pytest.mark.parametrize("name", ["vicuna_v1", "llama3", "plain"])
def test_chat_template_renders_the_same_text_in_transformers(name):
    template = get_template(name)
    tok = llama3_tokenizer() if name == "llama3" else tiny_tokenizer()
    turns, messages = (MULTI_TURN[:2], HF_MULTI_TURN[:2]) if name == "plain" else (MULTI_TURN, HF_MULTI_TURN)
    text = tok.apply_chat_template(messages, chat_template=jinja_for(template), tokenize=False)
    assert text == template.render(turns).text
    prompt = tok.apply_chat_template(messages[:1], chat_template=jinja_for(template), tokenize=False,
                                     add_generation_prompt=True)
    assert prompt == template.render(turns[:1]).text + template.generation_prompt
    assert template.generation_prompt == {"vicuna_v1": "ASSISTANT:", "plain": "",
                                          "llama3": "<|start_header_id|>assistant<|end_header_id|>\n\n"}[name]


def test_chat_template_takes_a_system_message_instead_of_the_default():
    template = get_template("vicuna_v1")
    messages = [{"role": "system", "content": "Be brief."}, *HF_MULTI_TURN[:2]]
    text = tiny_tokenizer().apply_chat_template(messages, chat_template=jinja_for(template), tokenize=False)
    assert text == "Be brief. USER: <image>\nWhat is this? ASSISTANT: A dog.</s>"


def test_the_registry_lists_the_templates_and_refuses_others():
    assert TEMPLATES.names() == ("plain", "vicuna_v1", "llama3")
    with pytest.raises(ConfigError, match="'chatml' is not a known template; valid: plain, vicuna_v1, llama3"):
        TEMPLATES.check("chatml", "data.template")
