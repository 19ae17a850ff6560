"""Box-prompted masks with SAM 2.1 (`models.segmenter.kind: sam2`), transformers' `Sam2Model`.

The contract of `sam.py` (one mask per box, bool masks at the image's resolution, predicted IoUs,
images without boxes skip the encoder), with SAM 2's geometry: Sam2ImageProcessor resizes the whole
image to the model's square input (1024 x 1024 for the hub checkpoints; aspect ratio not kept, no
padding), bilinear with antialiasing, ImageNet mean/std, all reproduced here on the device from uint8.
The Hiera image encoder runs `batch_size` images at a time and returns three feature levels (two
high-resolution maps for the mask decoder and the image embedding). Each image's boxes, scaled by
(S / W, S / H) as Sam2Processor scales them, then go through the prompt encoder and mask decoder in
ONE call (`multimask_output=False`); the low-resolution logits are resized straight to (H, W), as
Sam2ImageProcessor.post_process_masks does, and thresholded on the device.
"""

from __future__ import annotations

from typing import Any, Sequence, cast

import numpy as np
import torch
import torch.nn.functional as F
from transformers import Sam2ImageProcessor, Sam2Model

from pad_pipeline.annotate.config import ModelsConfig, SegmenterConfig
from pad_pipeline.annotate.models import preprocess as pp
from pad_pipeline.annotate.models.base import MaskResult, images_to_device
from pad_pipeline.annotate.models.compiling import compile_encoder
from pad_pipeline.annotate.models.hf_loading import autocast, load_image_model, provenance
from pad_pipeline.annotate.models.sam import boxes_to_resized_frame
from pad_pipeline.annotate.models.tiny import tiny_sam2
from pad_pipeline.core.errors import PadError
from pad_pipeline.core.runtime import TINY_RANDOM

# Masks are resized this many at a time, so float logits at full resolution never pile up.
_UPSAMPLE_GROUP = 16


def low_res_masks_to_image(low_res: torch.Tensor, original: tuple[int, int], threshold: float) -> torch.Tensor:
    """Mask logits (N, h, w) of the square model frame -> bool (N, H, W), one bilinear resize."""
    out = torch.empty((low_res.shape[0], *original), dtype=torch.bool, device=low_res.device)
    for start in range(0, low_res.shape[0], _UPSAMPLE_GROUP):
        group = low_res[start:start + _UPSAMPLE_GROUP, None].float()
        group = F.interpolate(group, original, mode="bilinear", align_corners=False)
        out[start:start + _UPSAMPLE_GROUP] = group[:, 0] > threshold
    return out


class Sam2Segmenter:
    """SAM 2 prompted with each image's boxes; see the module docstring."""

    def __init__(self, model: Sam2Model, processor: Sam2ImageProcessor, cfg: SegmenterConfig,
                 device: torch.device, dtype: str, revision: str | None, compiled: bool = False):
        self.model = cast(Sam2Model, cast(Any, model).to(device).eval())
        self.cfg, self.device, self.dtype, self.revision = cfg, device, dtype, revision
        self.norm = pp.Normalization.from_processor(processor)
        self.mode = pp.interpolation(processor.resample)
        size: Any = processor.size  # a SizeDict
        self.size = (int(size.height), int(size.width))
        trunk: Any = cast(Any, model.config).vision_config.backbone_config
        model_size = tuple(int(s) for s in trunk.image_size)
        if self.size != model_size:
            raise PadError(f"field 'models.segmenter.checkpoint': processor resizes to {self.size} but the "
                           f"model expects {model_size[0]}x{model_size[1]}")
        if compiled:  # models.compile: the Hiera encoder is most of SAM 2's FLOPs
            compile_encoder(self.model.vision_encoder)

    def pixel_values(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 (3, H, W) on device -> float (3, S, S): resized to the square input and normalised."""
        return pp.normalize(pp.resize(image, self.size, self.mode), self.norm)

    @torch.inference_mode()
    def _decode(self, embeddings: list[torch.Tensor], boxes: torch.Tensor, original: tuple[int, int]
                ) -> MaskResult:
        prompt = boxes_to_resized_frame(boxes.to(self.device), original, self.size)
        with autocast(self.device, self.dtype):
            out = self.model(image_embeddings=embeddings, input_boxes=prompt[None], multimask_output=False)
        masks = low_res_masks_to_image(out.pred_masks[0, :, 0], original, self.cfg.mask_threshold)
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
                # Always batch_size rows, so an image's masks do not depend on its batch (pp.fill_batch);
                # high-res maps first, embedding last.
                levels = self.model.get_image_embeddings(pp.fill_batch(pixels, self.cfg.batch_size))
            for j, i in enumerate(idx):
                results[i] = self._decode([level[j:j + 1] for level in levels], boxes[i],
                                          tuple(images[i].shape[:2]))
        return results

    def provenance(self) -> dict[str, str | None]:
        return provenance("sam2", self.cfg.checkpoint, self.revision)

    def stats(self) -> dict[str, Any]:
        return {}


def build_sam2(cfg: SegmenterConfig, models: ModelsConfig, device: torch.device) -> Sam2Segmenter:
    if cfg.checkpoint == TINY_RANDOM:
        model, processor = tiny_sam2(models.seed)
        revision = None
    else:
        model, processor, revision = load_image_model(Sam2Model, Sam2ImageProcessor, cfg.checkpoint, cfg.revision,
                                                       "models.segmenter.checkpoint")
    return Sam2Segmenter(model, processor, cfg, device, models.dtype, revision, compiled=models.compile)
