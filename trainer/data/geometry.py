"""The image processor's geometry, made explicit so images and masks go through the same transform.

`ImageGeometry.plan(width, height, spec)` computes, for one stored image, the optional LLaVA
expand-to-square pad, the resize (CLIP: shortest edge -> `size`, long edge `int(size * long / short)`)
and the centre crop (`int((H - crop) / 2)`), exactly as transformers' `CLIPImageProcessor` does.
`apply(image)` runs it on a uint8 [3, h, w] tensor (torchvision in the processor's resample mode,
bicubic for CLIP, with antialias, like the processor; normalisation happens batched in `collate`), and
`cell_weights(grid)` gives, per output-grid cell, the overlap of every source pixel row/column with
the cell's pre-image, from which `masks_to_tokens` computes exact covered-area fractions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torchvision.transforms.v2 import functional as tvF

from pad_pipeline.annotate.models.preprocess import interpolation


@dataclass(frozen=True)
class ProcessorSpec:
    """What the CLIP processor does, read once from it (see `from_processor`)."""

    shortest_edge: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resample: int = 3
    aspect: Literal["crop", "pad"] = "crop"

    @classmethod
    def from_processor(cls, processor, aspect: Literal["crop", "pad"] = "crop") -> "ProcessorSpec":
        size, crop = processor.size, processor.crop_size
        edge = size.get("shortest_edge") or size.get("height")
        if crop.get("height") != crop.get("width") or not processor.do_center_crop:
            raise ValueError("only square centre-cropping CLIP processors are supported")
        return cls(int(edge), int(crop["height"]), tuple(processor.image_mean), tuple(processor.image_std),
                   int(processor.resample), aspect)


@dataclass(frozen=True)
class ImageGeometry:
    """pad (left, top) on a (canvas_w, canvas_h) canvas -> resize to (resized_w, resized_h) -> crop."""

    width: int
    height: int
    pad_left: int
    pad_top: int
    canvas_w: int
    canvas_h: int
    resized_w: int
    resized_h: int
    crop_left: int
    crop_top: int
    out: int

    @classmethod
    def plan(cls, width: int, height: int, spec: ProcessorSpec) -> "ImageGeometry":
        if spec.aspect == "pad":
            # LLaVA's expand2square: centred on a square canvas of the longer side.
            side = max(width, height)
            pad_left, pad_top, cw, ch = (side - width) // 2, (side - height) // 2, side, side
        else:
            pad_left, pad_top, cw, ch = 0, 0, width, height
        short, long = (cw, ch) if cw <= ch else (ch, cw)
        new_short, new_long = spec.shortest_edge, int(spec.shortest_edge * long / short)
        rw, rh = (new_short, new_long) if cw <= ch else (new_long, new_short)
        if rw < spec.crop or rh < spec.crop:
            raise ValueError("resize smaller than the crop is not supported")
        return cls(width, height, pad_left, pad_top, cw, ch, rw, rh,
                   int((rw - spec.crop) / 2.0), int((rh - spec.crop) / 2.0), spec.crop)

    def apply(self, image: torch.Tensor, spec: ProcessorSpec) -> torch.Tensor:
        """uint8 [3, h, w] -> uint8 [3, out, out]; pad fill is the processor mean colour (LLaVA)."""
        if (self.canvas_w, self.canvas_h) != (self.width, self.height):
            fill = torch.tensor([int(m * 255) for m in spec.mean], dtype=torch.uint8).view(3, 1, 1)
            canvas = fill.expand(3, self.canvas_h, self.canvas_w).clone()
            canvas[:, self.pad_top:self.pad_top + self.height, self.pad_left:self.pad_left + self.width] = image
            image = canvas
        if (self.resized_w, self.resized_h) != (self.canvas_w, self.canvas_h):
            image = tvF.resize(image, [self.resized_h, self.resized_w], interpolation=interpolation(spec.resample),
                               antialias=True)
        return image[:, self.crop_top:self.crop_top + self.out, self.crop_left:self.crop_left + self.out]

    def cell_weights(self, grid: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(wy [grid, height], wx [grid, width]): length of each source pixel row/column inside the
        pre-image of each output cell (source pixel units); padding has no source pixel, so it counts
        as uncovered. The pre-image length of a cell is `out / grid / scale` on each axis."""
        wy = _axis_weights(grid, self.out, self.crop_top, self.resized_h / self.canvas_h, self.pad_top, self.height)
        wx = _axis_weights(grid, self.out, self.crop_left, self.resized_w / self.canvas_w, self.pad_left, self.width)
        return wy, wx

    def cell_area(self, grid: int) -> float:
        """Area of one output cell's pre-image, in source pixels."""
        return (self.out / grid) ** 2 / ((self.resized_h / self.canvas_h) * (self.resized_w / self.canvas_w))


def _axis_weights(grid: int, out: int, crop: int, scale: float, pad: int, length: int) -> torch.Tensor:
    edges = torch.arange(grid + 1, dtype=torch.float64) * (out / grid)
    src = (edges + crop) / scale - pad                      # cell edges in source pixel coordinates
    lo, hi = src[:-1, None], src[1:, None]
    pix = torch.arange(length, dtype=torch.float64)[None, :]
    return (torch.minimum(hi, pix + 1) - torch.maximum(lo, pix)).clamp_(min=0).float()
