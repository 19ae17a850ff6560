"""bench/flop_count.py against hand-counted FLOPs: matmuls forward and backward, deformable sampling."""

import sys

import torch
from helpers import REPO

sys.path.insert(0, str(REPO / "bench"))
from flop_count import Env, count_call, run_counted  # noqa: E402

from pad_pipeline.annotate.models.tiny import tiny_grounding_dino  # noqa: E402


def test_a_linear_layer_counts_2_flops_per_mac_forward_and_its_two_gradients_backward():
    b, i, o = 8, 16, 4
    layer, x = torch.nn.Linear(i, o), torch.randn(b, i, requires_grad=True)
    env = Env(real=True)
    assert count_call(lambda: layer(x), [], env) == 2 * b * i * o
    assert count_call(lambda: layer(x).sum().backward(), [], env, grad=True) == 3 * 2 * b * i * o
    layer.requires_grad_(False)  # a frozen layer: only the input's gradient
    assert count_call(lambda: layer(x).sum().backward(), [], env, grad=True) == 2 * 2 * b * i * o


def test_deformable_sampling_is_added_to_what_flop_counter_mode_counts():
    model, tok, _ = tiny_grounding_dino(0)
    ids = torch.tensor([tok("dog . cat .")["input_ids"]])

    def forward():
        model(pixel_values=torch.randn(1, 3, 64, 96), pixel_mask=torch.ones(1, 64, 96, dtype=torch.long),
              input_ids=ids, attention_mask=torch.ones_like(ids))

    env = Env(real=True)
    counted, _, _ = run_counted(forward, env.mode())
    cfg = model.config
    total = count_call(forward, [model], env)
    # 10 FLOPs per sampled point per channel: encoder queries = all pixels of the feature levels, decoder
    # queries = num_queries; each samples heads x levels x points values of d_model / heads channels.
    levels = [(8, 12), (4, 6), (2, 3), (1, 2)]  # strides 8, 16, 32 and the extra conv level of a 64x96 input
    per_query = 10 * cfg.num_feature_levels * cfg.d_model
    enc = sum(h * w for h, w in levels) * cfg.encoder_n_points * per_query * cfg.encoder_layers
    dec = cfg.num_queries * cfg.decoder_n_points * per_query * cfg.decoder_layers
    assert total - counted == enc + dec
