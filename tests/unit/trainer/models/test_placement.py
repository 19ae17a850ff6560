"""One device for the whole VLM: buffers follow the towers, and `move_to` names any tensor left behind."""

import pytest
import torch
from torch import nn

from pad_pipeline.core.runtime import TINY_RANDOM
from trainer.config.sections import LlmConfig, ModelConfig, VisionConfig
from trainer.models import tiny
from trainer.models.loading import build_vlm
from trainer.models.placement import move_to, stray_tensors
from trainer.models.projectors import build_projector
from trainer.models.vlm import PatchAlignedVLM

META = torch.device("meta")


def test_a_vlm_assembled_from_towers_already_on_a_device_has_every_tensor_there():
    # The GPU bench builds the towers on the GPU, then assembles: no buffer may stay on the CPU.
    vision, llm = tiny.tiny_vision_model().to(META), tiny.tiny_llm(len(tiny.tiny_tokenizer())).to(META)
    projector = build_projector("mlp2x_gelu", vision.config.hidden_size, llm.config.hidden_size).to(META)
    vlm = PatchAlignedVLM(vision, projector, llm)
    assert stray_tensors(vlm, META) == []
    assert vlm.image_mean.device == META and vlm.image_std.device == META


def test_the_loaded_vlm_moved_by_the_loader_sits_on_one_device():
    cfg = ModelConfig(vision=VisionConfig(checkpoint=TINY_RANDOM), llm=LlmConfig(checkpoint=TINY_RANDOM))
    model = build_vlm(cfg).model
    assert stray_tensors(model, torch.device("cpu")) == []
    move_to(model, META)
    names = [n for n, _ in model.named_parameters()] + [n for n, _ in model.named_buffers()]
    assert "image_mean" in names and stray_tensors(model, META) == []


def test_move_to_names_a_tensor_that_did_not_follow():
    class Pinned(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(2))
            self.register_buffer("scale", torch.ones(1))

        def _apply(self, fn, recurse=True):  # a module whose tensors refuse to move
            return self

    with pytest.raises(RuntimeError, match=r"Pinned: not on meta after moving it: weight \(cpu\), scale \(cpu\)"):
        move_to(Pinned(), "meta")
