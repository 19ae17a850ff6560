import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from pad_pipeline.annotate.ops.rle import decode_mask, encode_masks, mask_areas, run_lengths


def _random_masks(n, h, w, seed):
    rng = np.random.default_rng(seed)
    masks = rng.random((n, h, w)) < rng.uniform(0.05, 0.95, size=(n, 1, 1))
    masks[0] = False  # empty
    masks[1] = True  # full, starts with a run of ones
    masks[2, 0, 0] = True
    return masks


@pytest.mark.parametrize("shape", [(6, 7, 5), (5, 1, 9), (4, 33, 17)])
def test_encode_matches_pycocotools(shape):
    masks = _random_masks(*shape, seed=sum(shape))
    ours = encode_masks(torch.from_numpy(masks))
    ref = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    assert ours == [r["counts"].decode() for r in ref]


def test_run_lengths_sum_to_pixels_and_alternate():
    masks = _random_masks(5, 9, 11, seed=1)
    for counts, m in zip(run_lengths(torch.from_numpy(masks)), masks):
        assert sum(counts) == m.size
        flat = m.flatten(order="F")
        pos = 0
        for i, c in enumerate(counts):
            assert (flat[pos:pos + c] == bool(i % 2)).all()
            pos += c


def test_decode_round_trip_and_area():
    masks = _random_masks(4, 13, 8, seed=2)
    t = torch.from_numpy(masks)
    for counts, m in zip(encode_masks(t), masks):
        assert np.array_equal(decode_mask(counts, 13, 8).astype(bool), m)
    assert mask_areas(t) == [int(m.sum()) for m in masks]


def test_empty_batch():
    assert encode_masks(torch.zeros((0, 4, 4), dtype=torch.bool)) == []
