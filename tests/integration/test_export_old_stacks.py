"""PAD's exports in the stacks their users run, not only in the transformers that wrote them.

The older stacks are installed beside the project's (`tests/side_stacks.py`: `pip install --no-deps --target`,
cached, no torch reinstall) and each export is loaded there in a subprocess, as its users load it:
- `RUN/export-hf` in transformers 4.49.0 / tokenizers 0.21.0 (the oldest 4.x with the Llava classes the
  export names): `LlavaForConditionalGeneration` + `AutoProcessor` + the chat template;
- `RUN/export-llava` and the stage-1 `RUN/export` in LLaVA's pinned stack (transformers 4.37.2, tokenizers
  0.15.1, sentencepiece 0.1.99, accelerate 0.21.0), through the loading steps of its builder.
Each load must report no missing, unexpected or mismatched weight, and the logits (float32) must equal PAD's
own to 1e-5 (absolute and relative; measured: 0.0 in 4.49, 2e-7 in 4.37).
"""

import dataclasses
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from side_stacks import run_in_stack
from transformers import AutoProcessor, AutoTokenizer, LlamaTokenizer

from trainer.config.sections import ModelConfig
from trainer.constants import IMAGE_TOKEN_INDEX
from trainer.export.legacy_files import rewrite_tokenizer_files
from trainer.export.spec import ExportSpec
from trainer.export.write import write_format
from trainer.models import tiny
from trainer.models.loading import build_vlm

pytestmark = pytest.mark.integration
TOL = {"atol": 1e-5, "rtol": 1e-5}
# What LLaVA's builder and model read from config.json (llava/model/builder.py, llava_arch.py, clip_encoder.py).
LLAVA_READS = {"mm_vision_tower", "mm_projector_type", "mm_hidden_size", "mm_vision_select_layer",
               "mm_vision_select_feature", "mm_use_im_start_end", "mm_use_im_patch_token", "mm_patch_merge_type"}


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("old-stacks")
    cfg = ModelConfig.model_validate({"vision": {"checkpoint": "tiny-random"}, "projector": {"kind": "mlp2x_gelu"},
                                      "llm": {"checkpoint": "tiny-random", "gradient_checkpointing": False}})
    vlm = build_vlm(cfg, seed=7)
    vlm.model.eval()
    spec = ExportSpec(stage=2, model=cfg, image_aspect="pad", max_length=256, dtype="float32", template="vicuna_v1")
    ns = SimpleNamespace(vlm=vlm, hf=str(tmp / "export-hf"), llava=str(tmp / "export-llava"),
                         stage1=str(tmp / "export"), base=str(tmp / "base"), image=str(tmp / "wide.png"), tmp=tmp)
    write_format("hf", vlm, spec, ns.hf)
    write_format("llava", vlm, spec, ns.llava)
    write_format("pad", vlm, dataclasses.replace(spec, stage=1, template="plain"), ns.stage1)
    vlm.model.llm.save_pretrained(ns.base)  # the base LLM a stage-1 export is loaded over
    pixels = (np.arange(90 * 120 * 3) * 7 % 251).reshape(90, 120, 3).astype("uint8")
    Image.fromarray(pixels).save(ns.image)  # not square: the processor pads it, as LLaVA-1.5 does
    return ns


@pytest.fixture(scope="module")
def llava_stack(exports):
    """Both LLaVA-stack loads in one process (one torch + transformers import): the full folder and stage 1."""
    ns = SimpleNamespace(given=str(exports.tmp / "given.pt"), full=str(exports.tmp / "llava.pt"),
                         stage1=str(exports.tmp / "stage1.pt"))
    size = tiny.TINY_IMAGE_SIZE
    ns.pixels = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(3))
    ns.square = Image.open(exports.image).convert("RGB").resize((size, size))
    torch.save({"pixels": ns.pixels, "square": torch.from_numpy(np.asarray(ns.square).copy())}, ns.given)
    run_in_stack("llava", "load_llava.py", "full", exports.llava, ns.given, ns.full,
                 "stage1", exports.stage1, exports.base, ns.stage1)
    return ns


def _pad_ids(ids: torch.Tensor, image_token: int) -> torch.Tensor:
    """HF's ids (one `<image>` per vision token) -> PAD's (one IMAGE_TOKEN_INDEX per image)."""
    at = (ids == image_token).nonzero()[:, 0]
    return torch.cat([ids[:at[0]], torch.tensor([IMAGE_TOKEN_INDEX]), ids[at[-1] + 1:]])[None]


def test_hf_export_loads_completely_in_transformers_4_and_gives_pad_logits(exports):
    out = str(exports.tmp / "hf4.pt")
    run_in_stack("transformers4", "load_hf.py", exports.hf, exports.image, out)
    got = torch.load(out, weights_only=True)
    assert got["version"] == "4.49.0"
    assert not any(got["info"].values()), got["info"]  # nothing missing (newly initialised), unexpected, mismatched
    assert (got["image_processor"], got["tokenizer"]) == ("LlavaImageProcessor", "PreTrainedTokenizerFast")
    assert got["generated"] == 2
    processor = AutoProcessor.from_pretrained(exports.hf)  # transformers 5 reads the same files the same way
    mine = processor(images=Image.open(exports.image).convert("RGB"), text=got["prompt"], return_tensors="pt")
    assert torch.equal(mine["input_ids"], got["input_ids"])
    # transformers 5's image processors resize with torchvision, 4.49's with PIL: a pixel may differ by one grey
    # level (1/255/std after normalisation) where the two resamplers round apart (0.1% of values measured).
    diff = (mine["pixel_values"] - got["pixel_values"]).abs()
    assert diff.max() <= 1 / 255 / min(processor.image_processor.image_std) + 1e-5
    assert (diff > 1e-6).float().mean() < 0.01
    assert got["slow_ids"] == AutoTokenizer.from_pretrained(exports.hf)(got["prompt"]).input_ids
    image_token = processor.tokenizer.convert_tokens_to_ids("<image>")
    with torch.no_grad():
        ours = exports.vlm.model.logits(_pad_ids(got["input_ids"][0], image_token), got["pixel_values"])
    theirs = got["logits"]
    assert theirs.shape[1] == ours.shape[1]
    torch.testing.assert_close(theirs[..., :ours.shape[-1]], ours, **TOL)


def test_llava_export_loads_completely_in_llavas_stack_and_gives_pad_logits(exports, llava_stack):
    pixels, square = llava_stack.pixels, llava_stack.square
    got = torch.load(llava_stack.full, weights_only=True)
    assert got["version"] == "4.37.2"
    assert not any(got["info"].values()) and not any(got["tower_info"].values()), (got["info"], got["tower_info"])
    assert got["rows"][0] == got["rows"][1]  # the builder's resize_token_embeddings adds no random row
    assert got["slow_ids"] == got["fast_ids"] == exports.vlm.tokenizer("USER: ").input_ids
    with torch.no_grad():
        ours = exports.vlm.model.logits(torch.tensor([got["ids"]]), pixels)
    torch.testing.assert_close(got["logits"], ours, **TOL)
    want = exports.vlm.processor(images=square, return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(got["pixels"], want, atol=1e-6, rtol=0)  # CLIPImageProcessor of vision_tower/


def test_stage1_export_loads_over_a_base_and_as_pretrain_mm_mlp_adapter_in_llavas_stack(exports, llava_stack):
    got = torch.load(llava_stack.stage1, weights_only=True)
    assert got["unexpected"] == [] and got["missing_projector"] == []
    assert not any(got["tower_info"].values()), got["tower_info"]
    assert LLAVA_READS <= {k for k, v in got["config"].items() if v is not None}
    assert got["config"]["mm_use_im_patch_token"] is False  # LLaVA's default (True) would add a token
    trained = exports.vlm.model.projector.state_dict()
    for loaded in (got["builder_state"], got["adapter_state"]):  # the builder's load and the adapter's: exact
        assert loaded.keys() == trained.keys() and all(torch.equal(loaded[k], trained[k]) for k in trained)
    with torch.no_grad():
        want = exports.vlm.model.projector(got["x"])
    torch.testing.assert_close(got["builder"], want, **TOL)  # the same weights; 4.37's GELU path rounds apart
    torch.testing.assert_close(got["adapter"], want, **TOL)


def test_a_vicuna_like_tokenizer_reads_the_same_slow_and_fast_in_llavas_stack(tmp_path):
    """A sentencepiece Llama tokenizer as transformers 5 saves it (tokenizer.json with an unsplit Metaspace, its
    own class names) plus the `tokenizer.model` the LLaVA export copies: 4.37 reads both ways to the same ids."""
    corpus, spm = tmp_path / "corpus.txt", tmp_path / "spm"
    spm.mkdir()
    corpus.write_text("".join(tiny._corpus()) * 5)
    run_in_stack("llava", "spm_tokenizer.py", "train", str(corpus), str(spm))
    made = json.loads((spm / "vocab_merges.json").read_text())
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in made["merges"]]
    tokenizer = LlamaTokenizer(vocab=made["vocab"], merges=merges, add_bos_token=True)  # as v5 holds Vicuna's
    folder = tmp_path / "export-llava"
    tokenizer.save_pretrained(str(folder))
    shutil.copyfile(spm / "tokenizer.model", folder / "tokenizer.model")
    rewrite_tokenizer_files(str(folder), tokenizers_015=True)
    texts = ["a canyon wall reflects the water.", "USER: what is this?\nASSISTANT: a dog on the beach"]
    given, out = tmp_path / "texts.json", tmp_path / "ids.json"
    given.write_text(json.dumps(texts))
    run_in_stack("llava", "spm_tokenizer.py", "ids", str(folder), str(given), str(out))
    got = json.loads(out.read_text())
    want = [tokenizer(t).input_ids for t in texts]
    assert got == {"LlamaTokenizer": want, "LlamaTokenizerFast": want}
