"""Names -> builders for taggers, detectors and segmenters, and the model presets beside them.

A builder takes `(section_config, models_config, device)` and returns a loaded wrapper. Builders are
`Registry` strings, imported only when their name is chosen (RAM's code is not loaded for a CLIP run),
so `pad_pipeline.annotate.config` checks every `kind` against these registries when a manifest loads
without importing torch. A preset fills a manifest's `models` section; the manifest's own fields win.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pad_pipeline.core.registry import Registry

if TYPE_CHECKING:
    import torch

TAGGERS = Registry("tagger", {
    "clip": "pad_pipeline.annotate.models.clip_tagger:build_clip_tagger",
    "ram": "pad_pipeline.annotate.models.ram.tagger:build_ram_tagger",
    "ram_plus": "pad_pipeline.annotate.models.ram.tagger:build_ram_plus_tagger",
})
DETECTORS = Registry("detector", {
    "grounding_dino": "pad_pipeline.annotate.models.grounding_dino:build_grounding_dino",
    "mm_grounding_dino": "pad_pipeline.annotate.models.mm_grounding_dino:build_mm_grounding_dino",
})
SEGMENTERS = Registry("segmenter", {
    "sam": "pad_pipeline.annotate.models.sam:build_sam",
    "sam2": "pad_pipeline.annotate.models.sam2:build_sam2",
})

MODEL_REGISTRIES = {"tagger": TAGGERS, "detector": DETECTORS, "segmenter": SEGMENTERS}

# The paper preset: RAM++ Swin-L, grounding-dino-tiny, sam-vit-huge, Grounded-SAM's RAM thresholds.
# It stays as it is; `fast` is the choice for a new dataset where the paper's exact chain is not needed.
MODEL_PRESETS: dict[str, dict[str, Any]] = {
    "tiny-random": {
        "tagger": {"kind": "clip", "checkpoint": "tiny-random", "threshold": 0.0, "max_tags": 6},
        "detector": {"kind": "grounding_dino", "checkpoint": "tiny-random", "box_threshold": 0.0,
                     "text_threshold": 0.0, "canvas_multiple": 32},
        "segmenter": {"kind": "sam", "checkpoint": "tiny-random"},
        "nms": {"iou_threshold": 0.5, "max_boxes": 8},
        "dtype": "float32",
    },
    "paper": {
        "tagger": {"kind": "ram_plus", "checkpoint": "checkpoints/ram_plus_swin_large_14m.pth",
                   "tag_list": "checkpoints/ram_tag_list.txt",
                   "tag_thresholds": "checkpoints/ram_tag_list_threshold.txt", "image_size": 384},
        "detector": {"kind": "grounding_dino", "checkpoint": "IDEA-Research/grounding-dino-tiny",
                     "box_threshold": 0.25, "text_threshold": 0.2},
        "segmenter": {"kind": "sam", "checkpoint": "facebook/sam-vit-huge"},
        "nms": {"iou_threshold": 0.5},
        "dtype": "bfloat16",
    },
    # The paper's tagger and thresholds with faster/newer boxes and masks (bench/flops.py, 640x480, 10
    # boxes): MM Grounding DINO-T is Grounding DINO-T's architecture and cost, retrained (+2 AP zero-shot
    # on COCO); SAM 2.1 Hiera-S's encoder is 0.36 TFLOPs against ViT-H's 5.96, so the chain drops from
    # 7.0 to 1.4 TFLOPs per image (Hiera-L: 2.9, still dominated by its encoder; choose it with
    # --set models.segmenter.checkpoint=facebook/sam2.1-hiera-large when mask detail matters more).
    "fast": {
        "tagger": {"kind": "ram_plus", "checkpoint": "checkpoints/ram_plus_swin_large_14m.pth",
                   "tag_list": "checkpoints/ram_tag_list.txt",
                   "tag_thresholds": "checkpoints/ram_tag_list_threshold.txt", "image_size": 384},
        "detector": {"kind": "mm_grounding_dino",
                     "checkpoint": "openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det",
                     "box_threshold": 0.25, "text_threshold": 0.2},
        "segmenter": {"kind": "sam2", "checkpoint": "facebook/sam2.1-hiera-small"},
        "nms": {"iou_threshold": 0.5},
        "dtype": "bfloat16",
    },
}


def build_model(role: str, section: Any, models_config: Any, device: torch.device) -> Any:
    """The loaded wrapper of `section.kind` for `role` (tagger, detector or segmenter)."""
    registry = MODEL_REGISTRIES[role]
    # Checked again here: a config changed in code (model_copy) skips the check made at load.
    builder = registry.get(registry.check(section.kind, f"models.{role}.kind"))
    return builder(section, models_config, device)
