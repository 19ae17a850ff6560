"""Device-side image preprocessing that reproduces transformers' image processors from uint8 tensors.

Wrappers move uint8 (3, H, W) images to their device and call these pure functions there, instead of
running the processor on the host and copying float pixels over. The geometry rules (output sizes) are
the ones CLIP's, DETR/Grounding DINO's and SAM's processors use; resizing is torchvision's on uint8 with
antialiasing, as those (torchvision-backed) processors do, so pixel values match them to float rounding.
Every parameter comes from the checkpoint's processor object, so real and tiny checkpoints share the code.
`fill_batch` gives every forward pass of a model the same batch size, so that an image's output does not
depend on the images beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as tvF

# PIL resample codes (what processor configs store) -> torchvision modes; the one map of PAD (the
# trainer's image geometry uses it too). PIL's NEAREST samples pixel centres, which is torchvision's
# NEAREST_EXACT, not its legacy NEAREST (checked against PIL in the tests).
_PIL_TO_TV = {0: InterpolationMode.NEAREST_EXACT, 1: InterpolationMode.LANCZOS, 2: InterpolationMode.BILINEAR,
              3: InterpolationMode.BICUBIC, 4: InterpolationMode.BOX, 5: InterpolationMode.HAMMING}


@dataclass(frozen=True)
class Normalization:
    """x_norm = (x_uint8 * rescale - mean) / std, per channel."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    rescale: float = 1 / 255

    @classmethod
    def from_processor(cls, processor: Any) -> "Normalization":
        return cls(tuple(processor.image_mean), tuple(processor.image_std), float(processor.rescale_factor))


def interpolation(resample: Any) -> InterpolationMode:
    """A processor's `resample` (PIL code, enum or torchvision mode) as a torchvision mode."""
    if isinstance(resample, InterpolationMode):
        return resample
    return _PIL_TO_TV[int(resample)]


def shortest_edge_size(height: int, width: int, shortest: int) -> tuple[int, int]:
    """CLIP: the shorter side becomes `shortest`, the longer one keeps the aspect ratio (floored)."""
    if width <= height:
        return int(shortest * height / width), shortest
    return shortest, int(shortest * width / height)


def shortest_longest_size(height: int, width: int, shortest: int, longest: int) -> tuple[int, int]:
    """DETR/Grounding DINO: shorter side -> `shortest` unless that makes the longer side exceed `longest`."""
    short, long = min(height, width), max(height, width)
    raw = None
    if long / short * shortest > longest:
        raw = longest * short / long
        shortest = int(round(raw))
    if short == shortest:
        return height, width
    scale = raw if raw is not None else shortest
    if width < height:
        return int(scale * height / width), shortest
    return shortest, int(scale * width / height)


def longest_edge_size(height: int, width: int, longest: int) -> tuple[int, int]:
    """SAM: the longer side becomes `longest`; both sides rounded half up."""
    scale = longest / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def resize(image: torch.Tensor, size: tuple[int, int], mode: InterpolationMode) -> torch.Tensor:
    """uint8 (3, H, W) -> uint8 (3, h, w), antialiased like the processors."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return tvF.resize(image, list(size), interpolation=mode, antialias=True)


def center_crop(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Centre crop to `size`; a smaller image is zero-padded first (left/top get the smaller half)."""
    ch, cw = size
    h, w = image.shape[-2:]
    if ch > h or cw > w:
        pad_w, pad_h = max(cw - w, 0), max(ch - h, 0)
        image = tvF.pad(image, [pad_w // 2, pad_h // 2, (pad_w + 1) // 2, (pad_h + 1) // 2], fill=0)
        h, w = image.shape[-2:]
    top, left = int((h - ch) / 2.0), int((w - cw) / 2.0)
    return image[..., top:top + ch, left:left + cw]


def normalize(image: torch.Tensor, norm: Normalization) -> torch.Tensor:
    """uint8 -> float32 normalised; the rescale is folded into mean/std exactly as the processors do."""
    mean = torch.tensor(norm.mean, device=image.device) / norm.rescale
    std = torch.tensor(norm.std, device=image.device) / norm.rescale
    return (image.float() - mean[:, None, None]) / std[:, None, None]


def pad_bottom_right(images: Sequence[torch.Tensor], size: tuple[int, int] | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (3, h, w) float images zero-padded at bottom/right to `size` (default: the largest h, w).

    Returns the batch (B, 3, H, W) and the pixel mask (B, H, W), 1 on real pixels.
    """
    height = size[0] if size else max(int(im.shape[-2]) for im in images)
    width = size[1] if size else max(int(im.shape[-1]) for im in images)
    device = images[0].device
    batch = torch.zeros(len(images), 3, height, width, dtype=images[0].dtype, device=device)
    mask = torch.zeros(len(images), height, width, dtype=torch.long, device=device)
    for i, im in enumerate(images):
        h, w = im.shape[-2:]
        batch[i, :, :h, :w] = im
        mask[i, :h, :w] = 1
    return batch, mask


def fill_batch(batch: torch.Tensor, size: int) -> torch.Tensor:
    """`batch` (n, ...) with zero rows appended up to exactly `size` rows (n <= size).

    CPU kernels (MKL, oneDNN) and GPU ones may sum in another order when the batch dimension changes,
    so an image's output can change in its last bits with the number of images run beside it. A model
    that always runs `size` rows gives each image the same bits whatever its neighbours and whatever
    the caller's batch (checked in the tests on CPU); `size` is the model's `batch_size`, which is part
    of the annotation config hash. The zero rows cost compute only in a caller's last, partial batch.
    """
    n = int(batch.shape[0])
    if n > size:
        raise ValueError(f"a batch of {n} does not fit {size} rows")
    if n == size:
        return batch
    return torch.cat([batch, batch.new_zeros((size - n, *batch.shape[1:]))])
