"""The paper's losses against a float64 numpy reference: region means, 1 - mean cos (eq. 5), total (eq. 7)."""

import numpy as np
import pytest
import torch

from trainer.models.losses import patch_alignment_loss, region_embeddings, total_loss


def _reference_region_means(tokens: np.ndarray, masks: np.ndarray) -> np.ndarray:
    b, r, _ = masks.shape
    out = np.zeros((b, r, tokens.shape[-1]))
    for i in range(b):
        for p in range(r):
            if masks[i, p].any():
                out[i, p] = tokens[i, masks[i, p]].mean(0)
    return out


def _reference_patch_loss(v: np.ndarray, t: np.ndarray, valid: np.ndarray) -> float:
    cos = [v[i, p] @ t[i, p] / (np.linalg.norm(v[i, p]) * np.linalg.norm(t[i, p]))
           for i, p in zip(*np.nonzero(valid), strict=True)]
    return 1.0 - float(np.mean(cos))


def _inputs(seed=0, b=2, r=5, m=16, d=8):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(b, m, d, generator=g)
    masks = torch.rand(b, r, m, generator=g) > 0.7
    masks[0, 1] = False  # a region that selects no token
    masks[1, 0] = True   # one that selects every token
    text = torch.randn(b, r, d, generator=g)
    return tokens, masks, text


def test_region_embeddings_are_the_mean_of_the_selected_tokens():
    tokens, masks, _ = _inputs()
    v = region_embeddings(tokens, masks)
    assert v.shape == (2, 5, 8) and v.dtype == torch.float32
    np.testing.assert_allclose(v.double().numpy(), _reference_region_means(tokens.double().numpy(), masks.numpy()),
                               rtol=1e-5, atol=1e-6)
    assert torch.equal(v[0, 1], torch.zeros(8))  # no token selected: a zero vector, not NaN


def test_region_embeddings_of_low_precision_tokens_are_float32():
    tokens, masks, _ = _inputs()
    v = region_embeddings(tokens.bfloat16(), masks)
    assert v.dtype == torch.float32
    ref = _reference_region_means(tokens.bfloat16().double().numpy(), masks.numpy())
    np.testing.assert_allclose(v.double().numpy(), ref, rtol=1e-5, atol=1e-6)


def test_patch_loss_is_one_minus_the_mean_cosine_over_valid_regions():
    tokens, masks, text = _inputs(seed=1)
    v = region_embeddings(tokens, masks)
    valid = masks.any(-1)
    valid[1, 3] = False  # an invalid region with a non-zero embedding must not count
    loss = patch_alignment_loss(v, text, valid)
    assert loss.dim() == 0 and loss.dtype == torch.float32
    ref = _reference_patch_loss(v.double().numpy(), text.double().numpy(), valid.numpy())
    assert loss.item() == pytest.approx(ref, rel=1e-5, abs=1e-6)
    all_valid = patch_alignment_loss(v, text, masks.any(-1))
    assert float(all_valid) != pytest.approx(loss.item())  # excluding a region changes the value


def test_patch_loss_bounds_aligned_and_opposite_embeddings():
    v = torch.randn(1, 3, 4)
    valid = torch.ones(1, 3, dtype=torch.bool)
    assert float(patch_alignment_loss(v, 2.5 * v, valid)) == pytest.approx(0.0, abs=1e-6)
    assert float(patch_alignment_loss(v, -v, valid)) == pytest.approx(2.0, abs=1e-6)


def test_patch_loss_is_computed_in_float32_from_bfloat16_inputs():
    _, _, text = _inputs(seed=2)
    v = torch.randn_like(text)
    valid = torch.ones(2, 5, dtype=torch.bool)
    loss = patch_alignment_loss(v.bfloat16(), text.bfloat16(), valid)
    assert loss.dtype == torch.float32
    ref = _reference_patch_loss(v.bfloat16().double().numpy(), text.bfloat16().double().numpy(), valid.numpy())
    assert loss.item() == pytest.approx(ref, rel=1e-5, abs=1e-6)


def test_no_valid_region_gives_zero_loss_that_still_backpropagates_zeros():
    tokens, masks, text = _inputs()
    tokens.requires_grad_(True)
    v = region_embeddings(tokens, masks)
    loss = patch_alignment_loss(v, text, torch.zeros(2, 5, dtype=torch.bool))
    assert loss.item() == 0.0 and loss.dtype == torch.float32
    assert loss.requires_grad  # the graph stays uniform across steps (DeepSpeed's hooks)
    loss.backward()
    assert torch.equal(tokens.grad, torch.zeros_like(tokens))


def test_no_regions_at_all():
    tokens = torch.randn(2, 16, 8, requires_grad=True)
    v = region_embeddings(tokens, torch.zeros(2, 0, 16, dtype=torch.bool))
    assert v.shape == (2, 0, 8)
    loss = patch_alignment_loss(v, torch.zeros(2, 0, 8), torch.zeros(2, 0, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(tokens.grad, torch.zeros_like(tokens))


def test_gradient_reaches_only_the_tokens_of_valid_regions():
    tokens, masks, text = _inputs(seed=3)
    masks[:] = False
    masks[0, 0, :4] = True     # valid region: tokens 0-3 of image 0
    masks[1, 2, 8:10] = True   # a region marked invalid: tokens 8-9 of image 1
    valid = torch.zeros(2, 5, dtype=torch.bool)
    valid[0, 0] = True
    tokens.requires_grad_(True)
    patch_alignment_loss(region_embeddings(tokens, masks), text, valid).backward()
    touched = tokens.grad.abs().sum(-1) > 0
    expected = torch.zeros(2, 16, dtype=torch.bool)
    expected[0, :4] = True
    assert torch.equal(touched, expected)


def test_gradient_matches_finite_differences_in_float64():
    g = torch.Generator().manual_seed(4)
    tokens = torch.randn(1, 6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    masks = torch.tensor([[[1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 1, 0]]], dtype=torch.bool)
    text = torch.randn(1, 2, 3, generator=g, dtype=torch.float64)
    valid = torch.ones(1, 2, dtype=torch.bool)

    def f(x):
        return patch_alignment_loss(region_embeddings(x, masks), text, valid)

    f(tokens).backward()
    eps = 1e-4
    numeric = torch.zeros_like(tokens)
    with torch.no_grad():
        for idx in np.ndindex(*tokens.shape):
            up, down = tokens.clone(), tokens.clone()
            up[idx] += eps
            down[idx] -= eps
            numeric[idx] = (f(up) - f(down)) / (2 * eps)
    # The losses work in float32, so the comparison tolerates float32 rounding.
    torch.testing.assert_close(tokens.grad, numeric, rtol=1e-2, atol=1e-3)
    assert torch.equal(tokens.grad[0, 5], torch.zeros(3))  # token 5 is in no region


def test_total_loss_is_caption_plus_beta_times_patch():
    caption = torch.tensor(2.0, requires_grad=True)
    patch = torch.tensor(0.25, requires_grad=True)
    total = total_loss(caption, patch, 4.0)
    assert total.item() == pytest.approx(3.0)
    total.backward()
    assert float(caption.grad) == 1.0 and float(patch.grad) == 4.0
    assert total_loss(caption, patch, 0.0).item() == pytest.approx(2.0)
