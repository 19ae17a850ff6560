"""Encode stage: detections + masks -> `labels` (the sample record's label dicts) for the whole batch.

Every mask of the batch goes through one device run-length pass (`ops.rle_batch.encode_batch`); its run
boundaries and every box, score and mask score cross to the host in one copy. Empty masks are dropped and
counted in `empty_masks`. Numbers are rounded (box to 0.1 px, scores to 4 decimals) so records are
compact and stable across runs.

Host syncs per batch: 2 (the run boundaries' `nonzero` and the one copy), whatever the number of images
and boxes.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from pad_pipeline.annotate.models.base import Detections, MaskResult
from pad_pipeline.annotate.ops.rle_batch import CopiedBoundaries, finish_encode, start_encode
from pad_pipeline.annotate.stages.base import Batch

LabelList = list[dict[str, Any]]


def _extras(detections: Sequence[Detections], masks: Sequence[MaskResult]) -> torch.Tensor | None:
    """(total masks, 6): box xyxy, box score, mask score of every mask, in mask order."""
    rows = [torch.cat([d.boxes.float(), d.scores.float()[:, None], m.scores.float().to(d.boxes.device)[:, None]], 1)
            for d, m in zip(detections, masks, strict=True) if len(d)]
    return torch.cat(rows) if rows else None


def _records(labels: list[str], strings: list[str], areas: list[int], extras: np.ndarray) -> tuple[LabelList, int]:
    out: LabelList = [{"tag": tag, "bbox": [round(float(c), 1) for c in row[:4]], "score": round(float(row[4]), 4),
            "mask_score": round(float(row[5]), 4), "area": area, "rle_mask": rle}
           for tag, rle, area, row in zip(labels, strings, areas, extras, strict=True) if area > 0]
    out.sort(key=lambda lab: -lab["score"])
    return out, len(labels) - len(out)


def batch_labels(detections: Sequence[Detections], masks: Sequence[MaskResult]) -> list[tuple[LabelList, int]]:
    """Per image: its label records, best box score first, and the number of empty masks dropped."""
    return finish_labels(detections, start_encode([m.masks for m in masks], _extras(detections, masks)))


def finish_labels(detections: Sequence[Detections], copied: CopiedBoundaries) -> list[tuple[LabelList, int]]:
    """The host half of `batch_labels` (strings and records), once the copy `start_encode` began is done."""
    encoded = finish_encode(copied)
    results, start = [], 0
    for d, strings, areas in zip(detections, encoded.strings, encoded.areas, strict=True):
        rows = encoded.extras[start:start + len(d)]
        start += len(d)
        results.append(_records(d.labels, strings, areas, rows))
    return results


def image_labels(detections: Detections, masks: MaskResult) -> tuple[LabelList, int]:
    """`batch_labels` of one image."""
    return batch_labels([detections], [masks])[0]


class EncodeStage:
    """See the module docstring (2 host syncs per batch)."""

    name = "encode"

    def setup(self, device: torch.device) -> None:
        pass

    def __call__(self, batch: Batch) -> Batch:
        return self.finish(self.start(batch))

    def start(self, batch: Batch) -> Batch:
        """The device half: one run-length pass, the copy to the host under way (`encoded`)."""
        return {**batch, "encoded": [start_encode([m.masks for m in batch["masks"]],
                                                  _extras(batch["detections"], batch["masks"]))]}

    def finish(self, batch: Batch) -> Batch:
        """The host half: strings and label records (can run while the device works on the next batch)."""
        results = finish_labels(batch["detections"], batch["encoded"][0])
        return {**batch, "labels": [r[0] for r in results], "empty_masks": [r[1] for r in results]}

    def provenance(self) -> dict[str, Any]:
        return {}

    def stats(self) -> dict[str, Any]:
        return {}
