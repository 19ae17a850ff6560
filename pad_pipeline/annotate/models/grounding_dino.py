"""Tag-prompted box detection with Grounding DINO (`models.detector.kind: grounding_dino`).

transformers' `GroundingDinoForObjectDetection` with the checkpoint's BERT tokenizer and image
processor geometry. `detect()` preprocesses each uint8 image once on the device (shorter side to 800,
longer at most 1333 for the real checkpoints, ImageNet mean/std), splits its tags into prompt chunks
under the text limit (`grounding_text.chunk_tags`), runs every (image, chunk) pair on its own (a chunk
encoded before is reused, `text_cache.CachingTextBackbone`), and labels every kept box with one tag
(`grounding_text.assign_boxes_to_tags`). Boxes come back in xyxy pixels of the input image, clipped to
it, on the device; NMS is a later stage.

One pair per forward pass, never padded: a pair's boxes depend on that pair alone, not on the images
beside it in a batch (issue 12). Batching mixed sizes would pad the smaller images (and prompts), and
padding changes Grounding DINO's output (its Swin windows and deformable attention see the padded
frame); even pairs of equal shape batched together differ in the last bits from the same pairs run
alone, because CPU and GPU kernels sum in another order when the batch dimension changes. Real inputs
vary in processed size and prompt length from image to image, so equal-shape batches would be rare
anyway. `models.detector.batch_size` is therefore not used.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import torch
from transformers import GroundingDinoForObjectDetection, GroundingDinoImageProcessor

from pad_pipeline.annotate.config import DetectorConfig, ModelsConfig
from pad_pipeline.annotate.models import preprocess as pp
from pad_pipeline.annotate.models.base import Detections, images_to_device
from pad_pipeline.annotate.models.grounding_text import PromptChunk, assign_boxes_to_tags, chunk_tags
from pad_pipeline.annotate.models.hf_loading import autocast, load_text_image_model, provenance
from pad_pipeline.annotate.models.text_cache import CachingTextBackbone
from pad_pipeline.annotate.models.tiny import tiny_grounding_dino
from pad_pipeline.annotate.ops.boxes import clip_to_image, cxcywh_to_xyxy, scale_normalized
from pad_pipeline.core.runtime import TINY_RANDOM

log = logging.getLogger(__name__)


def boxes_to_pixels(cxcywh: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N, 4) normalised (cx, cy, w, h) of the unpadded image -> xyxy pixels clipped to the image."""
    xyxy = scale_normalized(cxcywh_to_xyxy(cxcywh.float()), width, height)
    return clip_to_image(xyxy, width, height)


def empty_detections(device: torch.device) -> Detections:
    return Detections(torch.zeros(0, 4, device=device), torch.zeros(0, device=device), [])


class GroundingDinoDetector:
    """Grounding DINO prompted with an image's tags; one tag per box; see the module docstring."""

    def __init__(self, model: GroundingDinoForObjectDetection, tokenizer: Any,
                 processor: GroundingDinoImageProcessor, cfg: DetectorConfig, device: torch.device,
                 dtype: str, revision: str | None):
        # PreTrainedModel.to is @wraps(nn.Module.to): its stub takes the device for `self`
        self.model = model.to(device).eval()  # type: ignore[arg-type]
        self.text_encoder = CachingTextBackbone(self.model.model.text_backbone, cfg.text_cache_size)
        self.model.model.text_backbone = self.text_encoder
        self.tokenizer, self.cfg, self.device, self.dtype = tokenizer, cfg, device, dtype
        self.revision = revision
        self.text_limit = min(cfg.max_text_tokens, int(model.config.max_text_len))
        self.norm = pp.Normalization.from_processor(processor)
        self.mode = pp.interpolation(processor.resample)
        self.size = processor.size
        self.dropped_tags = 0  # tags that cannot be prompted (over the limit alone, or empty), ever

    def pixel_values(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 (3, H, W) on device -> float (3, h, w), resized and normalised like the processor."""
        h, w = image.shape[-2:]
        # processor sizes are SizeDicts (stubs say dict): an unset edge is None
        shortest, longest = self.size.get("shortest_edge"), self.size.get("longest_edge")
        if shortest and longest:
            size = pp.shortest_longest_size(h, w, shortest, longest)
        else:
            size = (self.size["height"], self.size["width"])
        return pp.normalize(pp.resize(image, size, self.mode), self.norm)

    def chunks(self, tags: Sequence[str]) -> list[PromptChunk]:
        chunks, dropped = chunk_tags(tags, self.tokenizer, self.text_limit)
        if dropped:
            self.dropped_tags += len(dropped)
            log.warning("grounding_dino: %d tag(s) empty or over %d tokens on their own, dropped: %s",
                        len(dropped), self.text_limit, ", ".join(dropped[:5]))
        return chunks

    @torch.inference_mode()
    def _forward(self, pixels: torch.Tensor, chunk: PromptChunk) -> tuple[torch.Tensor, torch.Tensor]:
        """One (image, chunk) pair, alone and unpadded -> token logits (Q, T) and boxes (Q, 4) cxcywh."""
        input_ids = torch.tensor([chunk.input_ids], dtype=torch.long, device=self.device)
        pixel_mask = torch.ones((1, *pixels.shape[-2:]), dtype=torch.long, device=self.device)
        with autocast(self.device, self.dtype):
            out = self.model(pixel_values=pixels[None], pixel_mask=pixel_mask, input_ids=input_ids,
                             attention_mask=torch.ones_like(input_ids), token_type_ids=torch.zeros_like(input_ids))
        return out.logits[0].float(), out.pred_boxes[0].float()

    def _detect_image(self, image: np.ndarray, tags: Sequence[str]) -> Detections:
        chunks = self.chunks(tags)
        if not chunks:
            return empty_detections(self.device)
        pixels = self.pixel_values(images_to_device([image], self.device)[0])
        h, w = image.shape[:2]
        parts = []
        for chunk in chunks:
            logits, boxes = self._forward(pixels, chunk)
            keep, index, score = assign_boxes_to_tags(logits, chunk.spans, self.cfg.box_threshold,
                                                      self.cfg.text_threshold)
            parts.append(Detections(boxes_to_pixels(boxes[keep], h, w), score[keep],
                                    [chunk.tags[j] for j in index[keep].tolist()]))
        return _concat(parts, self.device)

    def detect(self, images: Sequence[np.ndarray], tags: Sequence[list[str]]) -> list[Detections]:
        return [self._detect_image(image, image_tags) for image, image_tags in zip(images, tags, strict=True)]

    def provenance(self) -> dict[str, str | None]:
        return provenance("grounding_dino", self.cfg.checkpoint, self.revision)

    def stats(self) -> dict[str, Any]:
        """Text-encoder reuse and tags that could never be prompted, since the detector was built."""
        return {"text_cache": self.text_encoder.stats.as_dict(), "dropped_tags": self.dropped_tags}


def _concat(parts: list[Detections], device: torch.device) -> Detections:
    if not parts:
        return empty_detections(device)
    return Detections(torch.cat([p.boxes for p in parts]), torch.cat([p.scores for p in parts]),
                      [label for p in parts for label in p.labels])


def build_grounding_dino(cfg: DetectorConfig, models: ModelsConfig, device: torch.device
                         ) -> GroundingDinoDetector:
    if cfg.checkpoint == TINY_RANDOM:
        model, tokenizer, processor = tiny_grounding_dino(models.seed)
        revision = None
    else:
        model, tokenizer, processor, revision = load_text_image_model(
            GroundingDinoForObjectDetection, GroundingDinoImageProcessor, cfg.checkpoint, cfg.revision,
            "models.detector.checkpoint")
    return GroundingDinoDetector(model, tokenizer, processor, cfg, device, models.dtype, revision)
