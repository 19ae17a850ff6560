"""Our explicit geometry gives the CLIP processor's pixels (crop), and LLaVA's expand2square (pad)."""

import numpy as np
import torch
from PIL import Image
from transformers import CLIPImageProcessor

from trainer.data.geometry import ImageGeometry, ProcessorSpec
from trainer.models.vlm import normalize_pixels


def _normalise(pixels: torch.Tensor, spec: ProcessorSpec) -> torch.Tensor:
    return normalize_pixels(pixels[None], torch.tensor(spec.mean), torch.tensor(spec.std))


def test_crop_matches_clip_image_processor():
    processor = CLIPImageProcessor(size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56})
    spec = ProcessorSpec.from_processor(processor, "crop")
    rng = np.random.default_rng(0)
    for w, h in [(97, 61), (50, 130)]:
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ref = processor(images=Image.fromarray(image), return_tensors="pt").pixel_values
        geometry = ImageGeometry.plan(w, h, spec)
        ours = _normalise(geometry.apply(torch.from_numpy(image).permute(2, 0, 1), spec), spec)
        assert ours.shape == ref.shape == (1, 3, 56, 56)
        assert torch.allclose(ours, ref, atol=1e-4)


def test_pad_matches_llava_expand2square_then_processor():
    processor = CLIPImageProcessor(size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56})
    spec = ProcessorSpec.from_processor(processor, "pad")
    image = np.random.default_rng(1).integers(0, 256, (40, 90, 3), dtype=np.uint8)
    # LLaVA: square canvas of the longer side, filled with the mean colour, image centred.
    fill = tuple(int(m * 255) for m in processor.image_mean)
    canvas = Image.new("RGB", (90, 90), fill)
    canvas.paste(Image.fromarray(image), (0, (90 - 40) // 2))
    ref = processor(images=canvas, return_tensors="pt").pixel_values
    geometry = ImageGeometry.plan(90, 40, spec)
    ours = _normalise(geometry.apply(torch.from_numpy(image).permute(2, 0, 1), spec), spec)
    assert torch.allclose(ours, ref, atol=1e-4)


def test_nearest_resample_code_resizes_like_pil():
    # The trainer uses the annotator's resample map: PIL code 0 is pixel-centre nearest, as in PIL.
    spec = ProcessorSpec(shortest_edge=7, crop=7, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), resample=0)
    image = np.random.default_rng(2).integers(0, 256, (13, 13, 3), dtype=np.uint8)
    ref = np.asarray(Image.fromarray(image).resize((7, 7), Image.Resampling.NEAREST)).transpose(2, 0, 1)
    ours = ImageGeometry.plan(13, 13, spec).apply(torch.from_numpy(image).permute(2, 0, 1), spec)
    assert np.array_equal(ours.numpy(), ref)
