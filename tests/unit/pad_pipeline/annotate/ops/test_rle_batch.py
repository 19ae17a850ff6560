"""The batched device RLE encoder equals pycocotools' encoder byte for byte (random, empty, full masks,
odd shapes, many images of different sizes at once), and carries per-mask numbers exactly."""

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from pad_pipeline.annotate.ops.rle_batch import batch_run_boundaries, encode_batch


def _reference(mask: torch.Tensor) -> str:
    return mask_utils.encode(np.asfortranarray(mask.numpy().astype(np.uint8)))["counts"].decode("ascii")


def _batch(seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shapes = [(3, 1, 1), (2, 7, 5), (0, 9, 4), (4, 13, 17), (1, 1, 31), (2, 31, 1), (3, 64, 48)]
    out = []
    for n, h, w in shapes:
        masks = torch.rand(n, h, w, generator=g) > torch.rand(n, 1, 1, generator=g)
        if n >= 2:
            masks[0] = False  # empty
            masks[1] = True  # full
        out.append(masks)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_strings_equal_pycocotools_for_every_mask_of_the_batch(seed):
    masks = _batch(seed)
    encoded = encode_batch(masks)
    for image_masks, strings, areas in zip(masks, encoded.strings, encoded.areas, strict=True):
        assert len(strings) == len(image_masks) == len(areas)
        for m, s, a in zip(image_masks, strings, areas, strict=True):
            assert s == _reference(m)
            assert a == int(m.sum())
            h, w = m.shape
            np.testing.assert_array_equal(mask_utils.decode({"size": [h, w], "counts": s.encode()}), m.numpy())


def test_masks_starting_with_one_and_lone_pixels_at_the_seams_between_masks():
    a = torch.zeros(2, 3, 3, dtype=torch.bool)
    a[0, 0, 0] = True  # first pixel set: the runs start with a zero-length run of zeros
    a[0, 2, 2] = True  # last pixel of mask 0 set, first of mask 1 clear: a seam the flat diff must cut
    a[1, 0, 0] = True  # ... and a mask that starts with 1 right after a mask that ended with 1
    encoded = encode_batch([a, a[:1].clone()])
    assert encoded.strings[0] == [_reference(a[0]), _reference(a[1])]
    assert encoded.strings[1] == [_reference(a[0])]


def test_extras_ride_along_exactly_and_empty_batches_work():
    masks = _batch(3)
    n = sum(len(m) for m in masks)
    extras = torch.rand(n, 6) * 1000
    encoded = encode_batch(masks, extras)
    np.testing.assert_array_equal(encoded.extras, extras.double().numpy())
    empty = encode_batch([torch.zeros(0, 5, 5, dtype=torch.bool)], torch.zeros(0, 6))
    assert empty.strings == [[]] and empty.areas == [[]] and empty.extras.shape == (0, 6)
    assert encode_batch([]).strings == []


def test_one_nonzero_for_the_whole_batch():
    """The boundaries of every mask come from one flat pass (one tensor of positions for all)."""
    masks = _batch(4)
    positions, offsets = batch_run_boundaries(masks)
    assert positions.dim() == 1 and offsets[-1] == sum(m.numel() for m in masks)
