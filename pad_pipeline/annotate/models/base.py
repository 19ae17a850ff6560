"""The interfaces between model wrappers and the annotation stages.

A wrapper is built once per worker from its config section (`checkpoint` is a hub id, a local path or
`tiny-random`), placed on one device, and then maps a batch of decoded images to plain results.
`provenance()` says what was loaded (it goes into every shard record, so it is fixed once built);
`stats()` counts what happened since it was built (the annotator actor reports it).
Images are uint8 RGB arrays of shape (H, W, 3) as produced by `pad_pipeline.annotate.intake`; a wrapper moves
them to its device as uint8 and normalises them there.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np
import torch


@dataclass
class TagResult:
    """Tags of one image above threshold, best first (the order the detector is prompted in)."""

    tags: list[str]
    scores: list[float]


@dataclass
class Detections:
    """Boxes of one image: xyxy pixels of the image, one single tag per box (never a merged phrase)."""

    boxes: torch.Tensor  # (N, 4) float32
    scores: torch.Tensor  # (N,) float32
    labels: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def select(self, keep: torch.Tensor) -> "Detections":
        idx = keep.tolist()
        return Detections(self.boxes[keep], self.scores[keep], [self.labels[i] for i in idx])


@dataclass
class MaskResult:
    """Masks of one image, one per box, at the image's resolution (on the wrapper's device)."""

    masks: torch.Tensor  # (N, H, W) bool
    scores: torch.Tensor  # (N,) predicted IoU


class Tagger(Protocol):
    def provenance(self) -> dict[str, Any]: ...

    def stats(self) -> dict[str, Any]: ...

    def tag(self, images: Sequence[np.ndarray]) -> list[TagResult]: ...


class Detector(Protocol):
    def provenance(self) -> dict[str, Any]: ...

    def stats(self) -> dict[str, Any]: ...

    def detect(self, images: Sequence[np.ndarray], tags: Sequence[list[str]]) -> list[Detections]: ...


class Segmenter(Protocol):
    def provenance(self) -> dict[str, Any]: ...

    def stats(self) -> dict[str, Any]: ...

    def segment(self, images: Sequence[np.ndarray], boxes: Sequence[torch.Tensor]) -> list[MaskResult]: ...


def images_to_device(images: Sequence[np.ndarray], device: torch.device) -> list[torch.Tensor]:
    """uint8 (H, W, 3) arrays -> uint8 (3, H, W) tensors on `device` (normalisation happens there)."""
    tensors = []
    for im in images:
        # Arrays from Ray's object store are read-only views; a CPU tensor must own writable memory,
        # while a GPU upload copies anyway.
        if device.type == "cpu" and not im.flags.writeable:
            im = np.array(im)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            host = torch.from_numpy(np.ascontiguousarray(im))
        tensors.append(host.to(device, non_blocking=True).permute(2, 0, 1))
    return tensors
