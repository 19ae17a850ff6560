"""beta ramps linearly 0 -> beta_max over the run; the lr is HF's cosine with warmup."""

import math

import pytest

from trainer.training.schedule import CosineWithWarmup, beta_at, warmup_steps


def test_beta_is_linear_from_zero_to_beta_max():
    values = [beta_at(s, 5, 5.0) for s in range(5)]
    assert values == pytest.approx([0.0, 1.25, 2.5, 3.75, 5.0])
    assert beta_at(0, 1, 5.0) == 5.0
    assert beta_at(99, 5, 2.0) == 2.0


def test_cosine_with_warmup():
    lr = CosineWithWarmup(total_steps=100, warmup_ratio=0.03)
    assert warmup_steps(100, 0.03) == 3
    assert [lr(s) for s in range(4)] == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    mid = 3 + (100 - 3) / 2
    assert lr(int(mid)) == pytest.approx(0.5 * (1 + math.cos(math.pi * (int(mid) - 3) / 97)))
    assert lr(100) == pytest.approx(0.0)
