"""Projector shapes, grids and LLaVA-compatible parameter names."""

import pytest
import torch

from pad_pipeline.core.errors import ConfigError
from trainer.models.projectors import build_projector, input_tokens


def test_linear_and_mlp_keep_the_grid_and_llava_keys():
    x = torch.randn(2, 16, 8)
    mlp = build_projector("mlp2x_gelu", 8, 12, input_tokens=16)
    assert mlp(x).shape == (2, 16, 12)
    assert list(mlp.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    lin = build_projector("linear", 8, 12)
    assert lin(x).shape == (2, 16, 12) and list(lin.state_dict()) == ["weight", "bias"]
    assert mlp.output_grid(4) == lin.output_grid(4) == 4


def test_c_abstractor_resamples_to_num_tokens():
    torch.manual_seed(0)
    p = build_projector("c_abstractor", 8, 12, num_tokens=4, depth=1, input_tokens=36)
    out = p(torch.randn(2, 36, 8))
    assert out.shape == (2, 4, 12)
    assert p.output_grid(6) == 2
    # Without conv blocks the pooling alone is visible: output token 0 sees only the top-left 3 x 3 patches.
    pool_only = build_projector("c_abstractor", 8, 12, num_tokens=4, depth=0, input_tokens=36)
    x = torch.randn(1, 36, 8)
    y = x.clone()
    y[0, 35] += 5.0  # bottom-right patch
    delta = (pool_only(y) - pool_only(x)).norm(dim=-1)[0]
    assert delta[0] == 0 and delta[3] > 0


def test_unknown_kind_and_non_square_tokens_are_config_errors():
    with pytest.raises(ConfigError, match="valid: linear, mlp2x_gelu, c_abstractor"):
        build_projector("qformer", 8, 8)
    with pytest.raises(ConfigError, match="square"):
        build_projector("c_abstractor", 8, 8, num_tokens=10)


def test_input_tokens_counts_patches_and_cls():
    assert input_tokens(24, drop_cls=True) == 576 and input_tokens(24, drop_cls=False) == 577
    assert build_projector("c_abstractor", 8, 12, num_tokens=4, depth=1, input_tokens=input_tokens(6, True)) is not None
