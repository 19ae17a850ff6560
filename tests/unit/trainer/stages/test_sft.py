"""Stage 2's model: projector initialised from any stage-1 result (PAD run or export, LLaVA's
mm_projector.bin), all three kinds; the LLM trainable; a projector of another kind refused by name."""

import pytest
import torch

from pad_pipeline.core.errors import PadError
from trainer.config.sections import ModelConfig
from trainer.config.sft import SftConfig
from trainer.export.llava import llava_state_dict
from trainer.export.pad_format import export_projector, projector_metadata
from trainer.models.loading import build_vlm
from trainer.stages.sft import SftStage

PROJECTOR = {"linear": {"kind": "linear"}, "mlp2x_gelu": {"kind": "mlp2x_gelu"},
             "c_abstractor": {"kind": "c_abstractor", "num_tokens": 16, "depth": 1}}


def _cfg(tmp_path, kind: str, init: str | None) -> SftConfig:
    return SftConfig.model_validate({
        "model": {"vision": {"checkpoint": "tiny-random"}, "llm": {"checkpoint": "tiny-random"},
                  "projector": PROJECTOR[kind]},
        "init": {"projector": init}, "data": {"path": "c.json", "image_folder": "img"},
        "train": {"output_dir": str(tmp_path / "run"), "global_batch_size": 4, "micro_batch_size": 4}})


def _stage1_projector(tmp_path, kind: str) -> tuple[str, dict[str, torch.Tensor]]:
    """A stage-1 run folder with its export, from a projector with random (seeded) weights."""
    model = ModelConfig.model_validate({"vision": {"checkpoint": "tiny-random"}, "llm": {"checkpoint": "tiny-random"},
                                        "projector": PROJECTOR[kind]})
    vlm = build_vlm(model, seed=123)
    state = {k: v + 0.5 for k, v in vlm.model.projector.state_dict().items()}  # not what a fresh build draws
    p = model.projector
    meta = projector_metadata(p.kind, 32, 64, p.num_tokens, p.depth, p.hidden_size, 64)
    run = tmp_path / "pretrain"
    export_projector(state, str(run / "export"), meta, "float32")
    return str(run), state


@pytest.mark.parametrize("kind", ["linear", "mlp2x_gelu", "c_abstractor"])
def test_the_projector_starts_from_the_stage1_run(tmp_path, kind):
    run, state = _stage1_projector(tmp_path, kind)
    vlm = SftStage(_cfg(tmp_path, kind, run)).build(torch.float32)
    loaded = vlm.model.projector.state_dict()
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)
    assert all(p.requires_grad for p in vlm.model.llm.parameters())
    assert not any(p.requires_grad for p in vlm.model.vision.parameters())


def test_llavas_mm_projector_bin_is_an_init(tmp_path):
    _, state = _stage1_projector(tmp_path, "mlp2x_gelu")
    path = tmp_path / "mm_projector.bin"
    torch.save(llava_state_dict(state), path)
    vlm = SftStage(_cfg(tmp_path, "mlp2x_gelu", str(path))).build(torch.float32)
    assert torch.equal(vlm.model.projector[2].weight, state["2.weight"])


def test_a_projector_of_another_kind_is_refused_naming_the_field(tmp_path):
    run, _ = _stage1_projector(tmp_path, "linear")
    with pytest.raises(PadError, match="field 'init.projector': .* is a LinearProjector, not the mlp2x_gelu"):
        SftStage(_cfg(tmp_path, "mlp2x_gelu", run)).build(torch.float32)


def test_without_init_the_projector_is_fresh(tmp_path):
    vlm = SftStage(_cfg(tmp_path, "mlp2x_gelu", None)).build(torch.float32)
    ref = build_vlm(_cfg(tmp_path, "mlp2x_gelu", None).model, seed=42).model.projector
    assert torch.equal(vlm.model.projector[0].weight, ref[0].weight)
