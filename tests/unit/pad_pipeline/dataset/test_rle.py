"""The one RLE codec against pycocotools: device encoder, numpy encoder, decoder, bounding box."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from pad_pipeline.dataset.rle import (
    decode_mask,
    encode_mask_array,
    encode_masks,
    rle_bounding_box,
    run_lengths,
)


def _random_masks(n, h, w, seed):
    rng = np.random.default_rng(seed)
    masks = rng.random((n, h, w)) < rng.uniform(0.05, 0.95, size=(n, 1, 1))
    masks[0] = False  # empty
    masks[1] = True  # full, starts with a run of ones
    masks[2, 0, 0] = True
    return masks


def _reference(masks):
    stacked = np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8))
    return [r["counts"].decode() for r in mask_utils.encode(stacked)]


@pytest.mark.parametrize("shape", [(6, 7, 5), (5, 1, 9), (4, 33, 17)])
def test_encode_matches_pycocotools(shape):
    masks = _random_masks(*shape, seed=sum(shape))
    assert encode_masks(torch.from_numpy(masks)) == _reference(masks)


@pytest.mark.parametrize("shape", [(6, 7, 5), (4, 33, 17)])
def test_numpy_encoder_equals_the_device_encoder(shape):
    masks = _random_masks(*shape, seed=sum(shape) + 1)
    assert [encode_mask_array(m) for m in masks] == _reference(masks)
    assert [encode_mask_array(m.astype(np.uint8)) for m in masks] == encode_masks(torch.from_numpy(masks))


def test_run_lengths_sum_to_pixels_and_alternate():
    masks = _random_masks(5, 9, 11, seed=1)
    for counts, m in zip(run_lengths(torch.from_numpy(masks)), masks, strict=True):
        assert sum(counts) == m.size
        flat = m.flatten(order="F")
        pos = 0
        for i, c in enumerate(counts):
            assert (flat[pos:pos + c] == bool(i % 2)).all()
            pos += c


def test_decode_round_trip():
    masks = _random_masks(4, 13, 8, seed=2)
    for counts, m in zip(encode_masks(torch.from_numpy(masks)), masks, strict=True):
        assert np.array_equal(decode_mask(counts, 13, 8).astype(bool), m)


def test_bounding_box_matches_pycocotools_and_the_pixels():
    masks = np.zeros((3, 17, 23), bool)
    masks[1, 4:9, 2:20] = True
    masks[2, 16, 22] = True
    for counts, m in zip(encode_masks(torch.from_numpy(masks)), masks, strict=True):
        box = rle_bounding_box(counts, 17, 23)
        ref = mask_utils.toBbox({"size": [17, 23], "counts": counts.encode()})
        assert box == tuple(int(v) for v in ref)
        if m.any():
            ys, xs = np.nonzero(m)
            assert box == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        else:
            assert box == (0, 0, 0, 0)


def test_empty_batch():
    assert encode_masks(torch.zeros((0, 4, 4), dtype=torch.bool)) == []


def test_importing_the_codec_does_not_import_torch():
    code = "import sys, pad_pipeline.dataset.rle; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
