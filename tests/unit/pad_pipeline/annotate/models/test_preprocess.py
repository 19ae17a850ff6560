"""The one PIL -> torchvision resample map, checked against PIL itself where the result is exact."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.v2 import InterpolationMode

from pad_pipeline.annotate.models import preprocess as pp


@pytest.mark.parametrize("size", [(5, 7), (9, 12), (29, 31)])  # (h, w): down, mixed, up
def test_pil_nearest_is_torchvision_nearest_exact(size):
    # PIL's NEAREST samples pixel centres; torchvision's legacy NEAREST does not, NEAREST_EXACT does.
    image = np.random.default_rng(0).integers(0, 256, (13, 17, 3), dtype=np.uint8)
    ref = np.asarray(Image.fromarray(image).resize(size[::-1], Image.Resampling.NEAREST)).transpose(2, 0, 1)
    mode = pp.interpolation(Image.Resampling.NEAREST)
    ours = pp.resize(torch.from_numpy(image).permute(2, 0, 1), size, mode)
    assert mode == InterpolationMode.NEAREST_EXACT and np.array_equal(ours.numpy(), ref)


def test_every_pil_code_maps_and_modes_pass_through():
    codes = {Image.Resampling.NEAREST: InterpolationMode.NEAREST_EXACT,
             Image.Resampling.LANCZOS: InterpolationMode.LANCZOS,
             Image.Resampling.BILINEAR: InterpolationMode.BILINEAR,
             Image.Resampling.BICUBIC: InterpolationMode.BICUBIC,
             Image.Resampling.BOX: InterpolationMode.BOX,
             Image.Resampling.HAMMING: InterpolationMode.HAMMING}
    for code, mode in codes.items():
        assert pp.interpolation(code) == pp.interpolation(int(code)) == mode
    assert pp.interpolation(InterpolationMode.BICUBIC) == InterpolationMode.BICUBIC
