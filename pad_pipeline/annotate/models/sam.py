"""Box-prompted masks with SAM (`models.segmenter.kind: sam`), transformers' `SamModel`.

`segment()` runs the image encoder on the images that have boxes, `batch_size` at a time, on pixels
prepared on the device exactly as SamImageProcessor does (longer side to the model's image size,
ImageNet mean/std, zero padding at bottom/right). Each image's boxes then go through the prompt
encoder and mask decoder in ONE call (one mask per box, `multimask_output=False`). Low-resolution
mask logits are upsampled to the padded frame, cropped to the resized image, resized to the original
(H, W) and thresholded, all on the device; only bool masks and predicted IoUs leave this module.
"""

from __future__ import annotations

from typing import Any, Sequence, cast

import numpy as np
import torch
import torch.nn.functional as F
from transformers import SamImageProcessor, SamModel, SamVisionConfig

from pad_pipeline.annotate.config import ModelsConfig, SegmenterConfig
from pad_pipeline.annotate.models import preprocess as pp
from pad_pipeline.annotate.models.base import MaskResult, images_to_device
from pad_pipeline.annotate.models.compiling import compile_encoder
from pad_pipeline.annotate.models.hf_loading import autocast, hold_weights, load_image_model, provenance
from pad_pipeline.annotate.models.tiny import tiny_sam
from pad_pipeline.core.errors import PadError
from pad_pipeline.core.runtime import TINY_RANDOM

# Masks are upsampled this many at a time, so float logits at full resolution never pile up.
_UPSAMPLE_GROUP = 16


def masks_to_image(low_res: torch.Tensor, padded: tuple[int, int], resized: tuple[int, int],
                   original: tuple[int, int], threshold: float) -> torch.Tensor:
    """Mask logits (N, h, w) -> bool (N, H, W): up to the padded frame, crop the padding, down to H, W."""
    out = torch.empty((low_res.shape[0], *original), dtype=torch.bool, device=low_res.device)
    for start in range(0, low_res.shape[0], _UPSAMPLE_GROUP):
        group = low_res[start:start + _UPSAMPLE_GROUP, None].float()
        group = F.interpolate(group, padded, mode="bilinear", align_corners=False)
        group = group[..., :resized[0], :resized[1]]
        group = F.interpolate(group, original, mode="bilinear", align_corners=False)
        out[start:start + _UPSAMPLE_GROUP] = group[:, 0] > threshold
    return out


def boxes_to_resized_frame(boxes: torch.Tensor, original: tuple[int, int], resized: tuple[int, int]
                           ) -> torch.Tensor:
    """xyxy pixels of the original image -> xyxy pixels of the resized (unpadded) model input."""
    sy, sx = resized[0] / original[0], resized[1] / original[1]
    return boxes.float() * torch.tensor([sx, sy, sx, sy], dtype=torch.float32, device=boxes.device)


class SamSegmenter:
    """SAM prompted with each image's boxes; see the module docstring."""

    def __init__(self, model: SamModel, processor: SamImageProcessor, cfg: SegmenterConfig,
                 device: torch.device, dtype: str, revision: str | None, compiled: bool = False,
                 weights_dtype: str = "float32"):
        # PreTrainedModel.to is @wraps(nn.Module.to): its stub takes the device for `self`
        self.model = model.to(device).eval()  # type: ignore[arg-type]
        # models.weights_dtype: only the ViT encoder (its FLOPs); boxes and masks stay float32, as bf16
        # would round box corners to several pixels
        hold_weights(self.model.vision_encoder, weights_dtype)
        self.encoder_dtype = next(self.model.vision_encoder.parameters()).dtype
        if compiled:  # models.compile: the ViT image encoder is nearly all of SAM's FLOPs
            compile_encoder(self.model.vision_encoder)
        self.cfg, self.device, self.dtype, self.revision = cfg, device, dtype, revision
        self.norm = pp.Normalization.from_processor(processor)
        self.mode = pp.interpolation(processor.resample)
        self.longest = int(processor.size["longest_edge"])
        self.padded = (int(processor.pad_size["height"]), int(processor.pad_size["width"]))
        model_size = cast(SamVisionConfig, model.config.vision_config).image_size
        assert isinstance(model_size, int), model_size  # SAM's input is square (the stub allows a pair)
        if self.padded != (model_size, model_size):
            raise PadError(f"field 'models.segmenter.checkpoint': processor pads to {self.padded} but the "
                           f"model expects {model_size}x{model_size}")

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        return pp.longest_edge_size(height, width, self.longest)

    def pixel_values(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 (3, H, W) on device -> float (3, S, S): resized, normalised, zero-padded at bottom/right."""
        resized = pp.resize(image, self.resized_size(*image.shape[-2:]), self.mode)
        return pp.pad_bottom_right([pp.normalize(resized, self.norm)], self.padded)[0][0]

    @torch.inference_mode()
    def _decode(self, embedding: torch.Tensor, boxes: torch.Tensor, original: tuple[int, int]) -> MaskResult:
        resized = self.resized_size(*original)
        prompt = boxes_to_resized_frame(boxes.to(self.device), original, resized)
        with autocast(self.device, self.dtype):
            out = self.model(image_embeddings=embedding[None], input_boxes=prompt[None],
                             multimask_output=False)
        masks = masks_to_image(out.pred_masks[0, :, 0], self.padded, resized, original,
                               self.cfg.mask_threshold)
        return MaskResult(masks, out.iou_scores[0, :, 0].float())

    @torch.inference_mode()
    def segment(self, images: Sequence[np.ndarray], boxes: Sequence[torch.Tensor]) -> list[MaskResult]:
        results = [MaskResult(torch.zeros((0, *im.shape[:2]), dtype=torch.bool, device=self.device),
                              torch.zeros(0, device=self.device)) for im in images]
        todo = [i for i, b in enumerate(boxes) if len(b)]  # images without boxes skip the encoder too
        for start in range(0, len(todo), self.cfg.batch_size):
            idx = todo[start:start + self.cfg.batch_size]
            pixels = torch.stack([self.pixel_values(im) for im in images_to_device([images[i] for i in idx],
                                                                                    self.device)])
            with autocast(self.device, self.dtype):
                # Always batch_size rows, so an image's masks do not depend on its batch (pp.fill_batch).
                embeddings = self.model.get_image_embeddings(
                    pp.fill_batch(pixels, self.cfg.batch_size).to(self.encoder_dtype)).float()
            for j, i in enumerate(idx):
                results[i] = self._decode(embeddings[j], boxes[i], tuple(images[i].shape[:2]))
        return results

    def provenance(self) -> dict[str, str | None]:
        return provenance("sam", self.cfg.checkpoint, self.revision)

    def stats(self) -> dict[str, Any]:
        return {}


def build_sam(cfg: SegmenterConfig, models: ModelsConfig, device: torch.device) -> SamSegmenter:
    if cfg.checkpoint == TINY_RANDOM:
        model, processor = tiny_sam(models.seed)
        revision = None
    else:
        model, processor, revision = load_image_model(SamModel, SamImageProcessor, cfg.checkpoint, cfg.revision,
                                                       "models.segmenter.checkpoint")
    return SamSegmenter(model, processor, cfg, device, models.dtype, revision, compiled=models.compile,
                        weights_dtype=models.weights_dtype)
