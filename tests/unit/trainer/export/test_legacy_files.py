"""The side files rewritten for older stacks: tokenizer.json in the tokenizers 0.21 / 0.15 format (still read
by 0.23 with the same ids), tokenizer_config.json with 4.x class names, and the 4.x config spelling."""

import json

import pytest
from tokenizers import Tokenizer
from transformers import LlamaTokenizer

from pad_pipeline.core.errors import PadError
from trainer.export.legacy_files import legacy_llava_config, legacy_tokenizer_config, legacy_tokenizer_json
from trainer.models import tiny

TEXTS = ["a canyon wall reflects the water.", "USER: what is this?\nASSISTANT: a dog", "red sky, blue river"]


def _ids(data: dict) -> list[list[int]]:
    tok = Tokenizer.from_str(json.dumps(data))
    return [tok.encode(t).ids for t in TEXTS]


def test_tiny_tokenizer_json_rewritten_for_015_and_021_gives_the_same_ids():
    data = json.loads(tiny.tiny_tokenizer().backend_tokenizer.to_str())
    assert isinstance(data["model"]["merges"][0], list)  # tokenizers 0.22+ writes pairs
    for old in (False, True):
        out = legacy_tokenizer_json(data, tokenizers_015=old)
        assert all(isinstance(m, str) and len(m.split(" ")) == 2 for m in out["model"]["merges"])
        assert _ids(out) == _ids(data)
    out = legacy_tokenizer_json(data, tokenizers_015=True)
    assert "ignore_merges" not in out["model"] and "split" not in out["pre_tokenizer"]
    assert out["pre_tokenizer"]["add_prefix_space"] is True and out["decoder"]["add_prefix_space"] is True


def test_unsplit_metaspace_becomes_the_llama_normalizer_for_015():
    data = json.loads(tiny.tiny_tokenizer().backend_tokenizer.to_str())
    llama = LlamaTokenizer(vocab=data["model"]["vocab"], merges=[tuple(m) for m in data["model"]["merges"]])
    source = json.loads(llama.backend_tokenizer.to_str())
    assert source["pre_tokenizer"]["split"] is False
    out = legacy_tokenizer_json(source, tokenizers_015=True)
    assert out["pre_tokenizer"] is None
    assert [n["type"] for n in out["normalizer"]["normalizers"]] == ["Prepend", "Replace"]
    assert _ids(out) == _ids(source)  # no leading spaces, no added tokens inside: the same pieces


def test_what_015_cannot_say_is_refused_in_one_line():
    data = json.loads(tiny.tiny_tokenizer().backend_tokenizer.to_str())
    data["model"]["ignore_merges"] = True
    assert legacy_tokenizer_json(data, tokenizers_015=False)["model"]["ignore_merges"] is True
    with pytest.raises(PadError, match="ignore_merges") as e:
        legacy_tokenizer_json(data, tokenizers_015=True)
    assert "\n" not in str(e.value)
    data["model"]["merges"].append(["a b", "c"])
    with pytest.raises(PadError, match="has a space"):
        legacy_tokenizer_json(data, tokenizers_015=False)


@pytest.mark.parametrize("name,sentencepiece,want", [
    ("TokenizersBackend", False, "PreTrainedTokenizerFast"), ("LlamaTokenizer", True, "LlamaTokenizer"),
    ("LlamaTokenizer", False, "LlamaTokenizerFast"), ("LlamaTokenizerFast", True, "LlamaTokenizer")])
def test_tokenizer_class_names_for_4x(name, sentencepiece, want):
    data = {"added_tokens": [{"id": 0, "content": "<unk>", "special": True, "lstrip": False, "rstrip": False,
                              "normalized": False, "single_word": False}]}
    out = legacy_tokenizer_config({"tokenizer_class": name, "backend": "tokenizers"}, data,
                                  sentencepiece=sentencepiece, chat_template="{{ x }}")
    assert out["tokenizer_class"] == want and "backend" not in out and out["chat_template"] == "{{ x }}"
    assert out["added_tokens_decoder"]["0"]["content"] == "<unk>"
    assert out["model_input_names"] == ["input_ids", "attention_mask"]


def test_llava_config_in_the_4x_spelling():
    rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0}
    config = {"dtype": "bfloat16", "text_config": {"rope_parameters": rope, "dtype": "bfloat16"},
              "vision_config": {"dtype": "bfloat16"}, "image_token_index": 32000}
    out = legacy_llava_config(config)
    assert out["torch_dtype"] == out["text_config"]["torch_dtype"] == out["vision_config"]["torch_dtype"] == "bfloat16"
    assert out["text_config"]["rope_theta"] == 500000.0
    assert out["text_config"]["rope_scaling"] == {"rope_type": "llama3", "factor": 8.0}
    assert "rope_parameters" not in out["text_config"] and "dtype" not in out
    default = legacy_llava_config({"text_config": {"rope_parameters": {"rope_type": "default", "rope_theta": 1e4}},
                                   "vision_config": {}})
    assert default["text_config"]["rope_scaling"] is None
