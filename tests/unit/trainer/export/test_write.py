"""`pad export` on a stage-1 run folder (config + complete checkpoints, written without DeepSpeed here), the
checkpoint choice, refusals before any weight loads, and stage 2's hook for a c_abstractor run."""

import os
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file
from transformers import LlamaForCausalLM, LlavaForConditionalGeneration

from pad_pipeline.core.config import dump_resolved
from pad_pipeline.core.errors import PadError
from trainer.config.pretrain import load_pretrain_config
from trainer.config.sections import ModelConfig
from trainer.export.from_run import find_checkpoint
from trainer.export.pad_format import read_pad_export
from trainer.export.write import export_stage2, run_export
from trainer.models.loading import build_vlm
from trainer.models.projectors import build_projector
from trainer.training import checkpoint

DEMO = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "manifests", "pretrain-demo.yaml")


def _stage1_run(tmp_path, kind: str = "mlp2x_gelu", steps: tuple[int, ...] = (3, 5)) -> tuple[str, dict]:
    run = str(tmp_path / "run")
    cfg = load_pretrain_config(DEMO, [f"train.output_dir={run}", f"model.projector.kind={kind}"])
    os.makedirs(run)
    dump_resolved(cfg, os.path.join(run, "config.yaml"))
    states = {}
    for step in steps:
        torch.manual_seed(step)
        states[step] = build_projector(kind, 32, 64).state_dict()
        partial = checkpoint.prepare_partial(run, step)
        save_file(states[step], os.path.join(partial, "projector.safetensors"))
        checkpoint.commit(run, step, {}, keep=10)
    return run, states


def test_pad_export_writes_the_chosen_checkpoint(tmp_path):
    run, states = _stage1_run(tmp_path)
    out, step = run_export(run, "hf", checkpoint="3")
    assert out == os.path.join(run, "export-hf-step-00000003") and step.endswith("step-00000003")
    model = LlavaForConditionalGeneration.from_pretrained(out)
    assert torch.equal(model.model.multi_modal_projector.linear_2.weight, states[3]["2.weight"])
    out, step = run_export(run, "llava")  # default: the newest complete checkpoint
    assert out == os.path.join(run, "export-llava") and step.endswith("step-00000005")
    out, _ = run_export(run, "pad", out=str(tmp_path / "mine"))
    x = torch.randn(1, 64, 32)
    ref = build_projector("mlp2x_gelu", 32, 64)
    ref.load_state_dict(states[5])
    assert torch.equal(read_pad_export(out).projector(x), ref(x))
    assert not os.path.exists(out + ".partial")


def test_checkpoint_choice_and_its_errors(tmp_path):
    run, _ = _stage1_run(tmp_path)
    checkpoint.prepare_partial(run, 7)  # a crash mid-save: never exported
    assert find_checkpoint(run, "step-00000003") == find_checkpoint(run, "3") == find_checkpoint(run, "step-3")
    assert find_checkpoint(run, None).endswith("step-00000005")
    with pytest.raises(PadError, match=r"not a complete checkpoint \(complete ones: step-00000003, step-00000005\)"):
        find_checkpoint(run, "7")
    with pytest.raises(PadError, match="expected step-N"):
        find_checkpoint(run, "last")
    with pytest.raises(PadError, match="no config.yaml"):
        run_export(str(tmp_path), "hf")


def test_c_abstractor_is_refused_before_anything_loads(tmp_path):
    run, _ = _stage1_run(tmp_path, "c_abstractor", steps=())
    for fmt, where in (("hf", "transformers"), ("llava", "LLaVA")):
        with pytest.raises(PadError, match=f"c_abstractor has no class in {where}"):
            run_export(run, fmt)  # not "no complete checkpoint": the refusal comes first
    with pytest.raises(PadError, match="no complete checkpoint"):
        run_export(run, "pad")


def test_stage2_hook_writes_pad_format_only_for_c_abstractor(tmp_path, capsys):
    model = ModelConfig.model_validate({
        "vision": {"checkpoint": "tiny-random"}, "llm": {"checkpoint": "tiny-random", "gradient_checkpointing": False},
        "projector": {"kind": "c_abstractor", "num_tokens": 16, "depth": 1}})
    vlm = build_vlm(model, seed=2)
    cfg = SimpleNamespace(model=model, data=SimpleNamespace(template="vicuna_v1", image_aspect="pad"),
                          export=SimpleNamespace(dtype="float32", formats=["hf", "llava"]),
                          train=SimpleNamespace(output_dir=str(tmp_path)))
    assert export_stage2(cfg, vlm) == {"pad": str(tmp_path / "export")}
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("pad sft:")]
    assert len(err) == 1 and "hf, llava refused: c_abstractor has no class" in err[0]
    assert sorted(os.listdir(tmp_path)) == ["export"]
    back = read_pad_export(str(tmp_path / "export"))
    assert back.stage == 2 and back.info["template"] == "vicuna_v1"
    llm = LlamaForCausalLM.from_pretrained(back.llm_dir)
    assert torch.equal(llm.lm_head.weight, vlm.model.llm.lm_head.weight)
    x = torch.randn(1, 64, 32)
    with torch.no_grad():
        assert torch.equal(back.projector(x), vlm.model.projector.eval()(x))
