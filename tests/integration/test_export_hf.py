"""demo annotate -> demo pretrain -> demo sft -> exports, with the real classes: transformers'
`LlavaForConditionalGeneration` and `AutoProcessor` load the sft run's export, generate from a chat-templated
prompt with an image, and give PAD's own first-step logits; DeepSpeed's consolidation of a ZeRO checkpoint
gives the weights the checkpoint saved; `pad export` re-exports a stage-1 run and an older sft checkpoint."""

import json
import os
import subprocess
import sys

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import AutoProcessor, LlavaForConditionalGeneration

from pad_pipeline.cli import main
from trainer.constants import IMAGE_TOKEN_INDEX
from trainer.export.from_run import load_trained_vlm
from trainer.export.pad_format import read_pad_export
from trainer.training import checkpoint
from trainer.training.engine import consolidated_state_dict

pytestmark = pytest.mark.integration
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGES = os.path.join(REPO, "manifests", "demo", "images")


def _pad(*args: str) -> None:
    """One `pad` command in its own process, as a user runs it (each training run owns its process group)."""
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "pad_pipeline.cli", *args], cwd=REPO, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chain")
    build, pre, tuned = str(tmp / "demo"), str(tmp / "pretrain"), str(tmp / "sft")
    _pad("annotate", "manifests/demo.yaml", "--out", build)
    _pad("pretrain", "manifests/pretrain-demo.yaml", "--set", f"data.path={build}", "--set", f"train.output_dir={pre}",
         "--set", "train.max_steps=2", "--set", "train.save_every=1", "--set", "train.progress=false")
    _pad("sft", "manifests/sft-demo.yaml", "--set", f"init.projector={pre}", "--set", f"train.output_dir={tuned}",
         "--set", "train.max_steps=2", "--set", "train.save_every=1", "--set", "train.progress=false")
    return pre, tuned


def _image() -> Image.Image:
    """An image the demo conversations use (the demo folder also holds a deliberately broken one)."""
    with open(os.path.join(REPO, "manifests", "demo", "conversations.json")) as f:
        name = next(e["image"] for e in json.load(f) if "image" in e)
    return Image.open(os.path.join(IMAGES, name)).convert("RGB")


def _pad_ids(ids: torch.Tensor, image_token: int) -> torch.Tensor:
    """HF's ids (one `<image>` per vision token) -> PAD's (one IMAGE_TOKEN_INDEX per image)."""
    at = (ids == image_token).nonzero()[:, 0]
    assert len(at) and int(at[-1] - at[0]) == len(at) - 1
    return torch.cat([ids[:at[0]], torch.tensor([IMAGE_TOKEN_INDEX]), ids[at[-1] + 1:]])[None]


def test_sft_hf_export_generates_and_gives_pad_logits(chain, tmp_path):
    _, tuned = chain
    assert {"export", "export-hf", "export-llava"} <= set(os.listdir(tuned))
    assert read_pad_export(os.path.join(tuned, "export")).stage == 2
    out = str(tmp_path / "hf32")
    assert main(["export", tuned, "--format", "hf", "--dtype", "float32", "--out", out]) == 0
    for folder in (os.path.join(tuned, "export-hf"), out):
        model = LlavaForConditionalGeneration.from_pretrained(folder).eval()
        processor = AutoProcessor.from_pretrained(folder)
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what is this?"}]}]
        prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = processor(images=_image(), text=prompt, return_tensors="pt")
        with torch.no_grad():
            generated = model.generate(**inputs, max_new_tokens=3, do_sample=False)
        assert generated.shape[1] == inputs["input_ids"].shape[1] + 3
    vlm, _ = load_trained_vlm(tuned)
    with torch.no_grad():
        theirs = model(**inputs).logits  # the float32 export
        ours = vlm.model.logits(_pad_ids(inputs["input_ids"][0], model.config.image_token_index),
                                inputs["pixel_values"])
    assert theirs.shape[1] == ours.shape[1]
    torch.testing.assert_close(theirs[..., :ours.shape[-1]], ours, atol=1e-5, rtol=1e-5)


def test_zero_checkpoints_consolidate_and_older_ones_export(chain):
    pre, tuned = chain
    for run, parts in ((pre, ("projector",)), (tuned, ("projector", "llm"))):
        first = checkpoint.complete_checkpoints(run)[0]
        merged = consolidated_state_dict(first)  # ZeRO-2 (stage 1) and the sft run's ZeRO partitions
        assert {k.split(".")[0] for k in merged} == set(parts)
        for part in parts:
            saved = load_file(os.path.join(first, f"{part}.safetensors"))
            mine = {k[len(part) + 1:]: v for k, v in merged.items() if k.startswith(part + ".")}
            assert mine.keys() == saved.keys() or part == "llm" and mine.keys() <= saved.keys()
            for k, v in mine.items():
                torch.testing.assert_close(v, saved[k].float(), atol=0, rtol=0)
    assert main(["export", tuned, "--format", "llava", "--checkpoint", "1"]) == 0
    assert os.path.isfile(os.path.join(tuned, "export-llava-step-00000001", "config.json"))


def test_stage1_run_exports_base_llm_with_trained_projector(chain):
    pre, _ = chain
    export = os.path.join(pre, "export")
    assert {"mm_projector.bin", "config.json", "projector.safetensors", "pad_export.json"} <= set(os.listdir(export))
    assert main(["export", pre, "--format", "hf"]) == 0
    model = LlavaForConditionalGeneration.from_pretrained(os.path.join(pre, "export-hf"))
    trained = load_file(os.path.join(checkpoint.latest_checkpoint(pre), "projector.safetensors"))
    assert torch.equal(model.model.multi_modal_projector.linear_1.weight, trained["0.weight"].float())
