"""The assembled VLM: frozen towers, gradients where each stage trains, image tokens spliced at placeholders,
losses and logits as a plain HF forward over the same embeddings computes them."""

import pytest
import torch

from trainer.config.sections import ModelConfig
from trainer.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from trainer.models.loading import build_vlm

TINY = {"vision": {"checkpoint": "tiny-random"}, "llm": {"checkpoint": "tiny-random"}}
IMG = IMAGE_TOKEN_INDEX


def _vlm(**projector):
    return build_vlm(ModelConfig.model_validate({**TINY, "projector": projector or {"kind": "mlp2x_gelu"}}))


def _batch(vocab_low: int = 4, vocab_high: int = 200, grid_tokens: int = 64) -> dict:
    """Stage-1 layout: [BOS, <image>] + caption, right-padded."""
    g = torch.Generator().manual_seed(0)
    return {
        "pixel_values": torch.randn(2, 3, 112, 112, generator=g),
        "input_ids": torch.tensor([[1, IMG, 5, 6, 7, 8], [1, IMG, 9, 10, 3, 3]]),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]]),
        "labels": torch.tensor([[-100, -100, 5, 6, 7, 8], [-100, -100, 9, 10, -100, -100]]),
        "region_masks": torch.rand(2, 2, grid_tokens, generator=g) > 0.6,
        "region_valid": torch.tensor([[True, True], [True, False]]),
        "tag_ids": torch.randint(vocab_low, vocab_high, (2, 2, 3), generator=g),
        "tag_mask": torch.tensor([[[1, 1, 0], [1, 1, 1]], [[1, 0, 0], [0, 0, 0]]]).bool(),
    }


@pytest.mark.parametrize("kind", ["linear", "mlp2x_gelu", "c_abstractor"])
def test_stage1_gradients_reach_only_the_projector(kind):
    vlm = _vlm(kind=kind, num_tokens=16, depth=1)
    model = vlm.model.train()
    out = model(_batch(grid_tokens=vlm.num_tokens))
    (out["caption_loss"] + 3.0 * out["patch_loss"]).backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    projector = {n for n, _ in model.named_parameters() if n.startswith("projector.")}
    assert with_grad and with_grad <= projector
    assert all(not p.requires_grad for n, p in model.named_parameters() if not n.startswith("projector."))
    assert not model.vision.training and model.llm.is_activation_checkpointing


def test_stage2_trains_projector_and_llm_and_never_the_vision_tower():
    cfg = ModelConfig.model_validate({**TINY, "projector": {"kind": "mlp2x_gelu"}})
    model = build_vlm(cfg, train_llm=True).model.train()
    model(_batch(), with_patch_loss=False)["caption_loss"].backward()
    grads = {n.split(".")[0] for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert grads == {"projector", "llm"}
    assert not any(p.requires_grad for p in model.vision.parameters())


def test_patch_loss_alone_reaches_the_projector():
    model = _vlm().model.train()
    model(_batch())["patch_loss"].backward()
    assert model.projector[0].weight.grad.abs().sum() > 0


def test_vision_features_drop_cls_and_use_layer_minus_two():
    model = _vlm().model
    pixels = _batch()["pixel_values"]
    feats = model.vision_features(pixels)
    ref = model.vision(pixel_values=pixels, output_hidden_states=True).hidden_states[-2][:, 1:]
    assert feats.shape == (2, 64, 32) and torch.equal(feats, ref)


def test_caption_loss_equals_full_sequence_hf_loss():
    """Stage 1 as before the placeholder: [BOS] + 64 vision tokens + caption, HF's own loss over it."""
    model = _vlm().model.eval()
    batch = _batch()
    with torch.no_grad():
        ours = model(batch, with_patch_loss=False)["caption_loss"]
        tokens = model.project_images(batch["pixel_values"])
        text = model.llm.get_input_embeddings()(batch["input_ids"][:, [0, 2, 3, 4, 5]])
        embeds = torch.cat([text[:, :1], tokens, text[:, 1:]], 1)
        mask = torch.cat([batch["attention_mask"][:, :1], torch.ones(2, 64, dtype=torch.long),
                          batch["attention_mask"][:, 2:]], 1)
        labels = torch.cat([batch["labels"][:, :1], torch.full((2, 64), -100), batch["labels"][:, 2:]], 1)
        ref = model.llm(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss
    assert torch.allclose(ours, ref, atol=1e-5)


def test_splice_places_each_image_at_its_placeholder_and_pads_text_only_rows():
    model = _vlm().model.eval()
    ids = torch.tensor([[1, 7, IMG, 8, 9], [1, 5, 6, 3, 3]])  # an image mid-text; a text-only row
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    labels = torch.tensor([[-100, -100, -100, 8, 9], [-100, 5, 6, -100, -100]])
    tokens = torch.randn(1, 64, 64)
    with torch.no_grad():
        embeds, attention, targets = model.splice(tokens, ids, mask, labels)
        text = model.llm.get_input_embeddings()(ids.clamp(min=0))
    assert embeds.shape == (2, 68, 64) and attention.shape == targets.shape == (2, 68)
    assert torch.equal(embeds[0, :2], text[0, :2]) and torch.equal(embeds[0, 2:66], tokens[0])
    assert torch.equal(embeds[0, 66:], text[0, 3:])
    assert (targets[0, 2:66] == IGNORE_INDEX).all() and targets[0, 66:].tolist() == [8, 9]
    assert torch.equal(embeds[1, :5], text[1]) and attention[1].tolist() == [1, 1, 1, 0, 0] + [0] * 63
    assert (targets[1, 5:] == IGNORE_INDEX).all()
    with pytest.raises(ValueError, match="more image placeholders than images"):
        model.splice(None, ids, mask)


def test_logits_match_a_plain_llm_forward_over_the_spliced_embeddings():
    model = _vlm().model.eval()
    ids = torch.tensor([[1, IMG, 5, 6], [1, 9, 10, 11]])
    pixels = torch.randint(0, 255, (1, 3, 112, 112), dtype=torch.uint8)
    with torch.no_grad():
        logits = model.logits(ids, pixels)
        embeds, attention, _ = model.splice(model.project_images(pixels), ids, torch.ones_like(ids))
        ref = model.llm(inputs_embeds=embeds, attention_mask=attention).logits
        text_only = model.logits(ids[1:])
    assert logits.shape == (2, 67, model.llm.config.vocab_size) and torch.allclose(logits, ref, atol=1e-6)
    assert torch.allclose(text_only[0], model.llm(input_ids=ids[1:]).logits[0], atol=1e-5)


def test_an_unused_image_keeps_the_projector_in_the_graph_with_zero_effect():
    """A text-only micro-batch carries one blank image (every rank runs the projector: ZeRO-3 gathers)."""
    model = _vlm().model.train()
    batch = {"pixel_values": torch.zeros(1, 3, 112, 112, dtype=torch.uint8), "input_ids": torch.tensor([[1, 5, 6]]),
             "attention_mask": torch.ones(1, 3, dtype=torch.long), "labels": torch.tensor([[-100, 5, 6]])}
    loss = model(batch, with_patch_loss=False)["caption_loss"]
    with torch.no_grad():
        ref = model.llm(input_ids=batch["input_ids"], labels=batch["labels"]).loss
    loss.backward()
    assert torch.allclose(loss, ref, atol=1e-6)
    assert model.projector[0].weight.grad is not None and model.projector[0].weight.grad.abs().sum() == 0


def test_a_batch_without_any_label_gives_a_zero_loss_that_still_back_propagates():
    model = _vlm().model.train()
    batch = {"pixel_values": torch.zeros(1, 3, 112, 112, dtype=torch.uint8), "input_ids": torch.tensor([[3]]),
             "attention_mask": torch.ones(1, 1, dtype=torch.long), "labels": torch.tensor([[-100]])}
    loss = model(batch, with_patch_loss=False)["caption_loss"]
    loss.backward()
    assert loss.item() == 0.0 and model.projector[0].weight.grad is not None
