"""The assembled VLM: frozen towers, gradients only in the projector, caption loss as HF computes it."""

import pytest
import torch

from trainer.config import ModelConfig
from trainer.models.loading import build_vlm


def _batch(vocab_low: int = 4, vocab_high: int = 200, grid_tokens: int = 64) -> dict:
    g = torch.Generator().manual_seed(0)
    return {
        "pixel_values": torch.randn(2, 3, 112, 112, generator=g),
        "input_ids": torch.tensor([[1, 5, 6, 7, 8], [1, 9, 10, 3, 3]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]),
        "labels": torch.tensor([[-100, 5, 6, 7, 8], [-100, 9, 10, -100, -100]]),
        "region_masks": torch.rand(2, 2, grid_tokens, generator=g) > 0.6,
        "region_valid": torch.tensor([[True, True], [True, False]]),
        "tag_ids": torch.randint(vocab_low, vocab_high, (2, 2, 3), generator=g),
        "tag_mask": torch.tensor([[[1, 1, 0], [1, 1, 1]], [[1, 0, 0], [0, 0, 0]]]).bool(),
    }


@pytest.mark.parametrize("kind", ["linear", "mlp2x_gelu", "c_abstractor"])
def test_gradients_reach_only_the_projector(kind):
    cfg = ModelConfig.model_validate({"vision": {"checkpoint": "tiny-random"}, "llm": {"checkpoint": "tiny-random"},
                                      "projector": {"kind": kind, "num_tokens": 16, "depth": 1}})
    vlm = build_vlm(cfg)
    model = vlm.model.train()
    out = model(_batch(grid_tokens=vlm.num_tokens))
    (out["caption_loss"] + 3.0 * out["patch_loss"]).backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    projector = {n for n, _ in model.named_parameters() if n.startswith("projector.")}
    assert with_grad and with_grad <= projector
    assert all(not p.requires_grad for n, p in model.named_parameters() if not n.startswith("projector."))
    assert not model.vision.training and model.llm.is_activation_checkpointing


def test_patch_loss_alone_reaches_the_projector():
    cfg = ModelConfig.model_validate({"vision": {"checkpoint": "tiny-random"}, "llm": {"checkpoint": "tiny-random"}})
    model = build_vlm(cfg).model.train()
    model(_batch())["patch_loss"].backward()
    assert model.projector[0].weight.grad.abs().sum() > 0


def test_vision_features_drop_cls_and_use_layer_minus_two():
    cfg = ModelConfig.model_validate({"vision": {"checkpoint": "tiny-random"}, "llm": {"checkpoint": "tiny-random"}})
    model = build_vlm(cfg).model
    pixels = _batch()["pixel_values"]
    feats = model.vision_features(pixels)
    ref = model.vision(pixel_values=pixels, output_hidden_states=True).hidden_states[-2][:, 1:]
    assert feats.shape == (2, 64, 32) and torch.equal(feats, ref)


def test_caption_loss_equals_full_sequence_hf_loss():
    cfg = ModelConfig.model_validate({"vision": {"checkpoint": "tiny-random"}, "llm": {"checkpoint": "tiny-random"}})
    model = build_vlm(cfg).model.eval()
    batch = _batch()
    with torch.no_grad():
        ours = model(batch, with_patch_loss=False)["caption_loss"]
        tokens = model.project_images(batch["pixel_values"])
        text = model.llm.get_input_embeddings()(batch["input_ids"])
        embeds = torch.cat([text[:, :1], tokens, text[:, 1:]], 1)
        mask = torch.cat([batch["attention_mask"][:, :1], torch.ones(2, 64, dtype=torch.long),
                          batch["attention_mask"][:, 1:]], 1)
        labels = torch.cat([batch["labels"][:, :1], torch.full((2, 64), -100), batch["labels"][:, 1:]], 1)
        ref = model.llm(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss
    assert torch.allclose(ours, ref, atol=1e-5)
