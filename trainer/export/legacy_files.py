"""The side files of an export, rewritten so older transformers / tokenizers read them as transformers 5 does.

transformers 5 writes files that transformers 4.x and its tokenizers cannot read:
- `tokenizer_config.json` names `TokenizersBackend` (a 5.x class) and no `added_tokens_decoder`;
- `tokenizer.json` in the tokenizers 0.22+ format: BPE merges as pairs, `ignore_merges`, Metaspace `split`.
  tokenizers 0.21 (transformers 4.49) reads strings for merges; 0.15 (LLaVA's pin, with transformers 4.37)
  knows neither `ignore_merges` nor `split` (its Metaspace always splits and takes `add_prefix_space`);
- `processor_config.json` holding the image processor, where 4.x reads `preprocessor_config.json`, and
  `chat_template.jinja`, where 4.x reads `chat_template.json` (processor) and `tokenizer_config.json`;
- `config.json` with `dtype` and `rope_parameters`, where 4.x reads `torch_dtype`, `rope_theta`, `rope_scaling`.
The rewritten files mean the same to transformers 5, which reads every older spelling (the tests load each
export in 5.x, 4.49 and 4.37 and compare token ids and logits). What cannot be said in the older format
(`ignore_merges: true`, a BPE piece with a space) is refused in one line rather than written differently.
A Metaspace with `split: false` (transformers 5's Llama) becomes, for 0.15, the normaliser pair transformers
4.37 itself wrote for Llama (prepend "▁", spaces -> "▁", no pre-tokeniser): the same pieces for any text
without added tokens inside it, which is how LLaVA's prompts reach the tokenizer (`<image>` is spliced as ids).
"""

from __future__ import annotations

import json
import os
from typing import Any

from pad_pipeline.core.errors import PadError

SPACE = "\u2581"
TOKENIZER_CLASS_5X = "TokenizersBackend"


def _merges_as_strings(model: dict[str, Any]) -> None:
    merges = []
    for merge in model.get("merges", []):
        if isinstance(merge, str):
            merges.append(merge)
            continue
        if any(" " in piece for piece in merge):
            raise PadError(f"tokenizer.json: the BPE merge {merge!r} has a space; older tokenizers cannot read it")
        merges.append(" ".join(merge))
    model["merges"] = merges


def _metaspace_015(node: dict[str, Any]) -> None:
    node.pop("split", None)
    node["add_prefix_space"] = node.get("prepend_scheme", "always") != "never"


def _is_unsplit_metaspace(node: dict[str, Any] | None) -> bool:
    return bool(node) and node.get("type") == "Metaspace" and node.get("split") is False  # type: ignore[union-attr]


def _llama_normalizer(metaspace: dict[str, Any], normalizer: dict[str, Any] | None) -> dict[str, Any]:
    steps = [normalizer] if normalizer else []
    if metaspace.get("prepend_scheme", "always") != "never":
        steps.append({"type": "Prepend", "prepend": SPACE})
    steps.append({"type": "Replace", "pattern": {"String": " "}, "content": SPACE})
    return {"type": "Sequence", "normalizers": steps}


def _walk(node: Any, fix: Any) -> None:
    """Apply `fix` to every dict with a `type` inside a pre-tokeniser / decoder tree."""
    if isinstance(node, dict):
        if "type" in node:
            fix(node)
        for value in node.values():
            _walk(value, fix)
    elif isinstance(node, list):
        for value in node:
            _walk(value, fix)


def legacy_tokenizer_json(data: dict[str, Any], *, tokenizers_015: bool) -> dict[str, Any]:
    """A copy of a `tokenizer.json` that tokenizers 0.21 (or, with `tokenizers_015`, 0.15) reads."""
    out = json.loads(json.dumps(data))
    model = out.get("model") or {}
    if model.get("type") == "BPE":
        _merges_as_strings(model)
    if not tokenizers_015:
        return out
    if model.pop("ignore_merges", False):
        raise PadError("tokenizer.json: BPE with ignore_merges (a Llama-3 tokenizer); tokenizers 0.15 "
                       "(LLaVA's pin) cannot read it: use --format hf")
    if _is_unsplit_metaspace(out.get("pre_tokenizer")):
        out["normalizer"] = _llama_normalizer(out["pre_tokenizer"], out.get("normalizer"))
        out["pre_tokenizer"] = None

    def fix(node: dict[str, Any]) -> None:
        if node["type"] == "Metaspace":
            _metaspace_015(node)

    _walk(out.get("pre_tokenizer"), fix)
    _walk(out.get("decoder"), fix)
    return out


def _token(value: Any) -> Any:
    return value.get("content") if isinstance(value, dict) else value


def bos_eos_flags(tokenizer_json: dict[str, Any], config: dict[str, Any]) -> dict[str, bool]:
    """`add_bos_token` / `add_eos_token` as the `tokenizer.json` post-processor behaves: 4.x's Llama tokenizers
    rebuild their post-processor from these flags (default: BOS on), transformers 5 runs the file's."""
    post = tokenizer_json.get("post_processor")
    if post is None:
        return {"add_bos_token": False, "add_eos_token": False}
    if post.get("type") != "TemplateProcessing" or not post.get("single"):
        return {}
    ends = [post["single"][0].get("SpecialToken", {}).get("id"), post["single"][-1].get("SpecialToken", {}).get("id")]
    return {"add_bos_token": ends[0] is not None and ends[0] == _token(config.get("bos_token")),
            "add_eos_token": ends[1] is not None and ends[1] == _token(config.get("eos_token"))}


def legacy_tokenizer_config(config: dict[str, Any], tokenizer_json: dict[str, Any], *, sentencepiece: bool,
                            chat_template: str | None) -> dict[str, Any]:
    """`tokenizer_config.json` for transformers 4.x: a 4.x class name (the slow one only when `tokenizer.model`
    is there to build it from), `added_tokens_decoder` and the chat template inline."""
    out = {k: v for k, v in config.items() if k != "backend"}
    name = str(out.get("tokenizer_class") or TOKENIZER_CLASS_5X)
    if name == TOKENIZER_CLASS_5X or name == "PreTrainedTokenizerFast":
        name = "PreTrainedTokenizerFast"
    elif sentencepiece:
        name = name.removesuffix("Fast")
    elif not name.endswith("Fast"):
        name += "Fast"
    out["tokenizer_class"] = name
    out.setdefault("model_input_names", ["input_ids", "attention_mask"])  # 4.x's fast default adds token_type_ids
    out.update(bos_eos_flags(tokenizer_json, out))
    keys = ("content", "lstrip", "normalized", "rstrip", "single_word", "special")
    out["added_tokens_decoder"] = {str(t["id"]): {k: t[k] for k in keys if k in t}
                                   for t in tokenizer_json.get("added_tokens", [])}
    if chat_template is not None:
        out["chat_template"] = chat_template
    return out


def legacy_rope(text: dict[str, Any]) -> dict[str, Any]:
    """A transformers-5 text config dict with `rope_theta` / `rope_scaling` as 4.x reads them."""
    out = dict(text)
    params = dict(out.pop("rope_parameters", None) or {})
    out["rope_theta"] = params.pop("rope_theta", out.get("rope_theta", 10000.0))
    out["rope_scaling"] = None if params.get("rope_type", "default") == "default" else params
    if "dtype" in out:
        out["torch_dtype"] = out.pop("dtype")
    return out


def legacy_llava_config(config: dict[str, Any]) -> dict[str, Any]:
    """A transformers-5 `LlavaConfig` dict -> the spelling of the published llava-hf `config.json`."""
    out = dict(config)
    if "dtype" in out:
        out["torch_dtype"] = out.pop("dtype")
    out["text_config"] = legacy_rope(out["text_config"])
    vision = dict(out["vision_config"])
    if "dtype" in vision:
        vision["torch_dtype"] = vision.pop("dtype")
    out["vision_config"] = vision
    return out


def _read(folder: str, name: str) -> Any:
    with open(os.path.join(folder, name)) as f:
        return json.load(f)


def _write(folder: str, name: str, data: Any) -> None:
    with open(os.path.join(folder, name), "w") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)


def rewrite_tokenizer_files(folder: str, *, tokenizers_015: bool, chat_template: str | None = None) -> None:
    """`tokenizer.json` and `tokenizer_config.json` in `folder`, rewritten in place for the older stacks."""
    data = legacy_tokenizer_json(_read(folder, "tokenizer.json"), tokenizers_015=tokenizers_015)
    _write(folder, "tokenizer.json", data)
    sentencepiece = os.path.isfile(os.path.join(folder, "tokenizer.model"))
    config = legacy_tokenizer_config(_read(folder, "tokenizer_config.json"), data, sentencepiece=sentencepiece,
                                     chat_template=chat_template)
    _write(folder, "tokenizer_config.json", config)


def rewrite_processor_files(folder: str, chat_template: str | None) -> None:
    """transformers 5's `processor_config.json` (+ `chat_template.jinja`) -> the 4.x trio of files."""
    processor = _read(folder, "processor_config.json")
    image = dict(processor.pop("image_processor", None) or {})
    if image:
        image["processor_class"] = processor.get("processor_class", "LlavaProcessor")
        _write(folder, "preprocessor_config.json", image)
    _write(folder, "processor_config.json", processor)
    jinja = os.path.join(folder, "chat_template.jinja")
    if os.path.isfile(jinja):
        os.remove(jinja)
    if chat_template is not None:
        _write(folder, "chat_template.json", {"chat_template": chat_template})
