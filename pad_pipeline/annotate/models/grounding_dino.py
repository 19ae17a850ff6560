"""Tag-prompted box detection with Grounding DINO (`models.detector.kind: grounding_dino`).

transformers' `GroundingDinoForObjectDetection` with the checkpoint's BERT tokenizer and image
processor geometry. `detect()` preprocesses each uint8 image once on the device (shorter side to 800,
longer at most 1333 for the real checkpoints, ImageNet mean/std), splits its tags into prompt chunks
under the text limit (`grounding_text.chunk_tags`), and runs the batch's (image, chunk) pairs in
batch-independent passes (`detect_batching`: each pair padded to a canvas and prompt-length bucket of
its own, `batch_size` rows per pass, blank rows filling a short pass). A chunk encoded before is reused
(`text_cache.CachingTextBackbone`, keyed on the host). Every kept box gets one tag, and boxes come back
in xyxy pixels of the input image, clipped to it, on the device (`detect_outputs`); NMS is a later stage.

Host syncs per `detect()` call: 2 (`detect_outputs.collect_detections`), whatever the number of images,
chunks and boxes; the model's own forward reads nothing back.
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
from pad_pipeline.annotate.models.compiling import compile_encoder
from pad_pipeline.annotate.models.detect_batching import Pair, PassInputs, assemble_pass, group_by_shape, pair_shape
from pad_pipeline.annotate.models.detect_outputs import assign_rows, collect_detections, token_tag_row
from pad_pipeline.annotate.models.grounding_text import PromptChunk, chunk_tags
from pad_pipeline.annotate.models.hf_loading import autocast, hold_weights, load_text_image_model, provenance
from pad_pipeline.annotate.models.row_attention import make_fusion_rowwise
from pad_pipeline.annotate.models.text_cache import CachingTextBackbone
from pad_pipeline.annotate.models.tiny import tiny_grounding_dino
from pad_pipeline.annotate.ops.boxes import clip_to_image, cxcywh_to_xyxy, scale_normalized
from pad_pipeline.annotate.ops.transfer import to_device
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
                 dtype: str, revision: str | None, weights_dtype: str = "float32", compiled: bool = False):
        # PreTrainedModel.to is @wraps(nn.Module.to): its stub takes the device for `self`
        self.model = hold_weights(model.to(device), weights_dtype).eval()  # type: ignore[arg-type]
        if compiled:  # models.compile_detector: the Swin backbone sees a few canvas buckets only
            compile_encoder(self.model.model.backbone)
        make_fusion_rowwise(self.model)  # its batch-wide softmax stabiliser would couple the rows
        self.text_encoder = CachingTextBackbone(self.model.model.text_backbone, cfg.text_cache_size)
        self.model.model.text_backbone = self.text_encoder
        self.tokenizer, self.cfg, self.device, self.dtype = tokenizer, cfg, device, dtype
        self.revision = revision
        self.text_limit = min(cfg.max_text_tokens, int(model.config.max_text_len))
        self.norm = pp.Normalization.from_processor(processor)
        self.mode = pp.interpolation(processor.resample)
        self.size = processor.size
        self.dropped_tags = 0  # tags that cannot be prompted (over the limit alone, or empty), ever
        self.pad_id = int(tokenizer.pad_token_id or 0)
        self.blank = [int(tokenizer.cls_token_id), int(tokenizer.sep_token_id)]
        self.weight_dtype = next(self.model.parameters()).dtype

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
    def _forward(self, inputs: PassInputs) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass of `batch_size` rows -> token logits (rows, Q, T) and boxes (rows, Q, 4) cxcywh, of
        the real rows only (boxes normalised to each pair's unpadded image, as the pixel mask says)."""
        self.text_encoder.expect(inputs.keys, inputs.real)
        with autocast(self.device, self.dtype):
            out = self.model(pixel_values=inputs.pixel_values.to(self.weight_dtype), pixel_mask=inputs.pixel_mask,
                             input_ids=inputs.input_ids, attention_mask=inputs.attention_mask,
                             token_type_ids=torch.zeros_like(inputs.input_ids))
        return out.logits[:inputs.real].float(), out.pred_boxes[:inputs.real].float()

    def pairs(self, images: Sequence[np.ndarray], tags: Sequence[list[str]]) -> list[Pair]:
        """Every (image, chunk) pair of the batch, in image then chunk order (host tokenisation, device pixels)."""
        chunks = [self.chunks(t) for t in tags]
        todo = [i for i, c in enumerate(chunks) if c]
        pixels = [self.pixel_values(im) for im in images_to_device([images[i] for i in todo], self.device)]
        return [Pair(i, chunk, px) for i, px in zip(todo, pixels, strict=True) for chunk in chunks[i]]

    def detect(self, images: Sequence[np.ndarray], tags: Sequence[list[str]]) -> list[Detections]:
        pairs = self.pairs(images, tags)
        if not pairs:
            return [empty_detections(self.device) for _ in images]
        shapes = [pair_shape(p.pixels, len(p.chunk.input_ids), self.cfg.canvas_multiple, self.text_limit)
                  for p in pairs]
        order: list[int] = []
        results = []
        for shape, idx in group_by_shape(shapes, self.cfg.batch_size):
            inputs = assemble_pass([pairs[i] for i in idx], shape, self.cfg.batch_size, self.blank, self.pad_id,
                                   self.device)
            logits, boxes = self._forward(inputs)
            token_tag = to_device(torch.tensor([token_tag_row(pairs[i].chunk.spans, logits.shape[-1]) for i in idx]),
                                  self.device)
            results.append((*assign_rows(logits, token_tag, self.cfg.box_threshold, self.cfg.text_threshold), boxes))
            order.extend(idx)
        # back to pair order (image, then chunk), so each image's boxes come in chunk then query order
        back = to_device(torch.tensor(sorted(range(len(order)), key=order.__getitem__)), self.device)
        keep, index, score, boxes = (torch.cat([r[k] for r in results])[back] for k in range(4))
        return collect_detections(keep, index, score, boxes, [p.image for p in pairs], [p.chunk.tags for p in pairs],
                                  [tuple(im.shape[:2]) for im in images])

    def provenance(self) -> dict[str, str | None]:
        return provenance("grounding_dino", self.cfg.checkpoint, self.revision)

    def stats(self) -> dict[str, Any]:
        """Text-encoder reuse and tags that could never be prompted, since the detector was built."""
        return {"text_cache": self.text_encoder.stats.as_dict(), "dropped_tags": self.dropped_tags}


def build_grounding_dino(cfg: DetectorConfig, models: ModelsConfig, device: torch.device
                         ) -> GroundingDinoDetector:
    if cfg.checkpoint == TINY_RANDOM:
        model, tokenizer, processor = tiny_grounding_dino(models.seed)
        revision = None
    else:
        model, tokenizer, processor, revision = load_text_image_model(
            GroundingDinoForObjectDetection, GroundingDinoImageProcessor, cfg.checkpoint, cfg.revision,
            "models.detector.checkpoint")
    return GroundingDinoDetector(model, tokenizer, processor, cfg, device, models.dtype, revision,
                                 models.weights_dtype, models.compile_detector)
