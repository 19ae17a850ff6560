"""Grounding DINO's outputs of a whole batch of pairs -> per-image `Detections`, with two host syncs.

Every pair's queries get one tag each at once (`assign_rows`: the vectorised
`grounding_text.assign_boxes_to_tags`, same numbers), then `collect_detections` finds the kept
(pair, query) entries of the whole batch with one `nonzero` and brings only their pair and tag indices
to the host in one copy (to name the tags). Boxes and scores stay on the device, gathered and scaled to
each image's pixels there.
"""

from __future__ import annotations

from typing import Sequence

import torch

from pad_pipeline.annotate.models.base import Detections
from pad_pipeline.annotate.ops.boxes import cxcywh_to_xyxy
from pad_pipeline.annotate.ops.transfer import to_device


def token_tag_row(spans: Sequence[Sequence[int]], tokens: int) -> list[int]:
    """Each token's tag index; `tokens` (the column past the last) for tokens of no tag."""
    row = [tokens] * tokens
    for j, span in enumerate(spans):
        for k in span:
            row[k] = j
    return row


def assign_rows(logits: torch.Tensor, token_tag: torch.Tensor, box_threshold: float, text_threshold: float
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(R, Q, T) token logits and (R, T) token -> tag maps -> keep (R, Q) bool, tag index (R, Q), score (R, Q).

    A tag's score is the max sigmoid over its tokens; a query takes its best tag and is kept when that
    score passes both thresholds (as `assign_boxes_to_tags`, for every row at once). Columns of no tag
    start at -1, so they never win over a tag (a sigmoid is >= 0)."""
    rows, queries, tokens = logits.shape
    probs = logits.float().sigmoid()
    tag_scores = torch.full((rows, queries, tokens + 1), -1.0, device=logits.device)
    tag_scores = tag_scores.scatter_reduce(2, token_tag[:, None, :].expand(rows, queries, tokens), probs, "amax",
                                           include_self=True)
    score, index = tag_scores[..., :tokens].max(dim=2)
    keep = (score > box_threshold) & (score > text_threshold)
    return keep, index, score


def collect_detections(keep: torch.Tensor, index: torch.Tensor, score: torch.Tensor, boxes: torch.Tensor,
                       pair_image: Sequence[int], pair_tags: Sequence[Sequence[str]],
                       image_sizes: Sequence[tuple[int, int]]) -> list[Detections]:
    """Kept boxes of all pairs (rows in image order, then chunk order) -> one `Detections` per image:
    xyxy pixels of the image, clipped to it; 2 host syncs (the `nonzero` and one copy)."""
    device = boxes.device
    kept = keep.nonzero()  # (K, 2): pair row, query; row-major, so per image in chunk then query order
    row, query = kept[:, 0], kept[:, 1]
    host = torch.stack([row, index[row, query]]).cpu()
    rows, tags = host[0].numpy(), host[1].numpy()
    wh = to_device(torch.tensor([[w, h, w, h] for h, w in (image_sizes[i] for i in pair_image)],
                                dtype=torch.float32), device)[row]
    xyxy = cxcywh_to_xyxy(boxes[row, query].float()) * wh
    xyxy = torch.minimum(torch.maximum(xyxy, torch.zeros_like(xyxy)), wh)
    kept_scores = score[row, query]
    counts = [0] * len(image_sizes)
    labels: list[list[str]] = [[] for _ in image_sizes]
    for r, t in zip(rows.tolist(), tags.tolist(), strict=True):  # numpy on the host: no device read
        counts[pair_image[r]] += 1
        labels[pair_image[r]].append(pair_tags[r][t])
    return [Detections(b, s, lab) for b, s, lab in zip(xyxy.split(counts), kept_scores.split(counts), labels,
                                                         strict=True)]
