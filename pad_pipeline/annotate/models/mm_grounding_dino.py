"""Tag-prompted boxes with MM Grounding DINO (`models.detector.kind: mm_grounding_dino`).

MM Grounding DINO is OpenMMLab's retraining of Grounding DINO (same Swin + BERT architecture, more
grounding data), ported to transformers as `MMGroundingDinoForObjectDetection`. Its inputs and outputs
are Grounding DINO's (BERT tokenizer with the same phrase delimiters, GroundingDinoImageProcessor
geometry, per-token logits and cxcywh boxes), so the Grounding DINO wrapper runs it as it is: this
module only loads the checkpoint into that wrapper and names it in the provenance.
"""

from __future__ import annotations

import torch
from transformers import GroundingDinoImageProcessor, MMGroundingDinoForObjectDetection

from pad_pipeline.annotate.config import DetectorConfig, ModelsConfig
from pad_pipeline.annotate.models.grounding_dino import GroundingDinoDetector
from pad_pipeline.annotate.models.hf_loading import load_text_image_model, provenance
from pad_pipeline.annotate.models.tiny import tiny_mm_grounding_dino
from pad_pipeline.core.runtime import TINY_RANDOM


class MMGroundingDinoDetector(GroundingDinoDetector):
    """The Grounding DINO wrapper around an MM Grounding DINO model."""

    def provenance(self) -> dict[str, str | None]:
        return provenance("mm_grounding_dino", self.cfg.checkpoint, self.revision)


def build_mm_grounding_dino(cfg: DetectorConfig, models: ModelsConfig, device: torch.device
                            ) -> MMGroundingDinoDetector:
    if cfg.checkpoint == TINY_RANDOM:
        model, tokenizer, processor = tiny_mm_grounding_dino(models.seed)
        revision = None
    else:
        model, tokenizer, processor, revision = load_text_image_model(
            MMGroundingDinoForObjectDetection, GroundingDinoImageProcessor, cfg.checkpoint, cfg.revision,
            "models.detector.checkpoint")
    return MMGroundingDinoDetector(model, tokenizer, processor, cfg, device, models.dtype,  # type: ignore[arg-type]
                                   revision, models.weights_dtype, models.compile_detector)
