"""RAM / RAM++ networks on the tiny configuration: shapes, Swin pieces and the RAM++ re-weighting."""

import pytest
import torch

from pad_pipeline.annotate.models.ram.model import RamModel, reweighted_label_embeddings
from pad_pipeline.annotate.models.ram.swin import (
    SwinConfig,
    SwinEncoder,
    relative_position_index,
    shifted_window_mask,
    window_merge,
    window_partition,
)
from pad_pipeline.annotate.models.ram.tiny import TINY_DESCRIPTIONS, tiny_ram, tiny_ram_config


@pytest.mark.parametrize("plus", [False, True])
def test_tiny_model_shapes(plus):
    model = tiny_ram(num_classes=7, image_size=64, plus=plus, seed=0)
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        tokens = model.image_encoder(pixels)
        logits = model(pixels)
    # 64 px / patch 4 = 16x16, one merge -> 8x8 tokens of width 32, plus the pooled token in front.
    assert tokens.shape == (2, 1 + 64, 32)
    assert torch.allclose(tokens[:, 0], tokens[:, 1:].mean(dim=1), atol=1e-6)
    assert logits.shape == (2, 7)
    assert model.label_embed.shape == (7 * (TINY_DESCRIPTIONS if plus else 1), 16)
    assert hasattr(model, "reweight_scale") == plus


def test_same_seed_same_weights_other_seed_other_logits():
    pixels = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a = tiny_ram(5, 64, True, seed=3)(pixels)
        b = tiny_ram(5, 64, True, seed=3)(pixels)
        c = tiny_ram(5, 64, True, seed=4)(pixels)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_wrong_input_size_and_unfit_config_are_refused():
    model = tiny_ram(3, 64, False, seed=0)
    with pytest.raises(ValueError, match="64x64"):
        model(torch.zeros(1, 3, 96, 96))
    with pytest.raises(ValueError, match="image_size 72"):
        SwinEncoder(SwinConfig(image_size=72, embed_dim=8, depths=(2, 2), num_heads=(1, 1), window_size=4))


def test_relative_position_index_matches_its_definition():
    w = 3
    idx = relative_position_index(w)
    for a in range(w * w):
        for b in range(w * w):
            (ya, xa), (yb, xb) = divmod(a, w), divmod(b, w)
            assert idx[a, b] == (ya - yb + w - 1) * (2 * w - 1) + (xa - xb + w - 1)


def test_window_partition_round_trips_and_groups_neighbours():
    x = torch.arange(2 * 8 * 8 * 1, dtype=torch.float32).view(2, 8, 8, 1)
    windows = window_partition(x, 4)
    assert windows.shape == (2, 4, 16, 1)
    assert windows[0, 1, :4, 0].tolist() == x[0, 0, 4:8, 0].tolist()  # window 1 = top-right block
    assert torch.equal(window_merge(windows, 4, 8, 8), x)


def test_shifted_window_mask_separates_regions_of_the_rolled_image():
    mask = shifted_window_mask(resolution=8, window=4, shift=2)
    assert mask.shape == (4, 16, 16)
    assert (mask[0] == 0).all()  # the top-left window lies inside one region
    # Bottom-right window: rows/cols 0-1 (of the window) and 2-3 come from different image regions.
    last = mask[3].view(4, 4, 4, 4)
    assert last[0, 0, 0, 1] == 0 and last[0, 0, 0, 2] == -100 and last[0, 0, 2, 0] == -100
    assert set(mask.unique().tolist()) == {0.0, -100.0}


def test_ram_plus_reweighting_matches_a_per_class_loop():
    torch.manual_seed(0)
    classes, descriptions, dim = 4, 3, 5
    label_embed = torch.randn(classes * descriptions, dim)
    image_cls = torch.randn(2, dim)
    scale = torch.tensor(1.3)
    out = reweighted_label_embeddings(image_cls, label_embed, classes, scale)
    assert out.shape == (2, classes, dim)
    for b in range(2):
        unit = image_cls[b] / image_cls[b].norm()
        for c in range(classes):
            d = label_embed[c * descriptions:(c + 1) * descriptions]
            weights = torch.softmax(scale.exp() * (d @ unit), dim=0)
            assert torch.allclose(out[b, c], weights @ d, atol=1e-6)


def test_ram_queries_do_not_depend_on_the_image_but_ram_plus_queries_do():
    ram, plus = tiny_ram(6, 64, False, seed=1), tiny_ram(6, 64, True, seed=1)
    cls = torch.randn(2, 16)
    with torch.no_grad():
        q_ram, q_plus = ram.label_queries(cls), plus.label_queries(cls)
    assert q_ram.shape == q_plus.shape == (2, 6, 32)
    assert torch.equal(q_ram[0], q_ram[1])
    assert not torch.allclose(q_plus[0], q_plus[1])


def test_head_without_projection_when_widths_match():
    cfg = tiny_ram_config(3, 64, False)
    same = type(cfg)(num_classes=3, swin=cfg.swin, head=type(cfg.head)(hidden_size=16, num_heads=2,
                                                                       intermediate_size=32, num_layers=1,
                                                                       encoder_width=16))
    model = RamModel(same)
    assert isinstance(model.label_proj, torch.nn.Identity)
    assert not any(k.startswith("label_proj") for k in model.state_dict())
