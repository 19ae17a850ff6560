"""The models bench/gpu.py runs: each chain's networks at the real sizes (random weights, built on the device
from bench/real_configs.py) or tiny (`--smoke`, PAD's tiny-random twins), wrapped in PAD's own wrappers and
assembled into PAD's `Annotator` exactly as its `setup()` would, only without loading a checkpoint.

A chain is `paper` (RAM++ -> Grounding DINO-T -> SAM ViT-H) or `fast` (RAM++ -> MM Grounding DINO-T ->
SAM 2.1 Hiera-S, or Hiera-L with `fast-L`). RAM++ at full size has 4585 class slots; its vocabulary repeats
PAD's packaged tag words over them (a tag is emitted once per image), and the BERT tokenizer is PAD's tiny
one (BERT's special-token ids, whole tag words), so prompts have the token counts of real RAM tags.
The workload is fixed so both loops do the same work: `max_tags` tags per image (threshold 0), every query
kept (thresholds 0), class-agnostic NMS at 0.5 and `max_boxes` boxes to the segmenter.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from real_configs import (
    RAM_IMAGE_SIZE,
    RAM_TAGS,
    grounding_dino_tiny_config,
    mm_grounding_dino_tiny_config,
    sam2_hiera_config,
    sam_vit_huge_config,
)
from transformers import (
    GroundingDinoForObjectDetection,
    GroundingDinoImageProcessor,
    MMGroundingDinoForObjectDetection,
    Sam2ImageProcessor,
    Sam2Model,
    SamImageProcessor,
    SamModel,
)

from pad_pipeline.annotate.chain import Annotator, ChainTimings
from pad_pipeline.annotate.config import DetectorConfig, ModelsConfig, NmsConfig, SegmenterConfig, TaggerConfig
from pad_pipeline.annotate.models import tiny
from pad_pipeline.annotate.models.grounding_dino import GroundingDinoDetector
from pad_pipeline.annotate.models.mm_grounding_dino import MMGroundingDinoDetector
from pad_pipeline.annotate.models.ram.model import RamModel, ram_plus_swin_large_config
from pad_pipeline.annotate.models.ram.tagger import DEFAULT_THRESHOLD, RamTagger
from pad_pipeline.annotate.models.ram.tiny import tiny_ram
from pad_pipeline.annotate.models.sam import SamSegmenter
from pad_pipeline.annotate.models.sam2 import Sam2Segmenter
from pad_pipeline.annotate.models.vocabulary import build_vocabulary, packaged_tags
from pad_pipeline.annotate.stages.base import ModelStage

CHAINS = {"paper": ("grounding_dino", "sam"), "fast": ("mm_grounding_dino", "sam2-small"),
          "fast-L": ("mm_grounding_dino", "sam2-large")}
# (height, width) of LCS-558K-like images (LAION/CC/SBU thumbnails: longer side 336-640, 4:3 and 1:1 common).
SIZES_558K = [(480, 640), (640, 480), (375, 500), (333, 500), (500, 375), (336, 448), (512, 512), (427, 640)]
SIZES_SMOKE = [(40, 60), (64, 48), (50, 50), (30, 70)]
MAX_TAGS, MAX_BOXES = 12, 10


@dataclass
class ChainParts:
    """One chain's networks and their preprocessing objects (shared by PAD's loop and the peer loop)."""

    name: str
    ram: RamModel
    tags: list[str]
    detector: torch.nn.Module
    tokenizer: Any
    detector_processor: GroundingDinoImageProcessor
    segmenter_kind: str  # "sam" or "sam2"
    segmenter: torch.nn.Module
    segmenter_processor: Any


def workload_images(n: int, smoke: bool, seed: int = 0) -> list[np.ndarray]:
    """`n` uint8 RGB images cycling through the size list: smooth colour fields with a few solid shapes."""
    rng = np.random.default_rng(seed)
    sizes = SIZES_SMOKE if smoke else SIZES_558K
    out = []
    for i in range(n):
        h, w = sizes[i % len(sizes)]
        y, x = np.mgrid[0:h, 0:w]
        base = rng.integers(40, 200, 3)
        im = (base + 50 * np.sin(x[..., None] / (5 + i % 7) + y[..., None] / 9)).clip(0, 255).astype(np.uint8)
        for _ in range(3):
            y0, x0 = int(rng.integers(0, h * 3 // 4)), int(rng.integers(0, w * 3 // 4))
            im[y0:y0 + h // 4, x0:x0 + w // 4] = rng.integers(0, 255, 3)
        out.append(im)
    return out


def _build(device: torch.device, ctor: Any) -> Any:
    with torch.device(device):  # random init on the device: seconds, not minutes, for ViT-H and a 7B LLM
        return ctor().eval()


def build_parts(chain: str, device: torch.device, smoke: bool, seed: int = 0) -> ChainParts:
    detector_kind, segmenter_kind = CHAINS[chain]
    torch.manual_seed(seed)
    if smoke:
        tags = packaged_tags()
        ram = tiny_ram(len(tags), 64, True, seed).to(device)
        make = tiny.tiny_mm_grounding_dino if detector_kind == "mm_grounding_dino" else tiny.tiny_grounding_dino
        dino, tokenizer, dino_proc = make(seed)
        seg, seg_proc = tiny.tiny_sam2(seed) if segmenter_kind.startswith("sam2") else tiny.tiny_sam(seed)
        return ChainParts(chain, ram, tags, dino.to(device), tokenizer, dino_proc, segmenter_kind.split("-")[0],
                          seg.to(device), seg_proc)
    words = packaged_tags()
    tags = [words[i % len(words)] for i in range(RAM_TAGS)]
    ram = _build(device, lambda: RamModel(ram_plus_swin_large_config(RAM_TAGS, RAM_IMAGE_SIZE)))
    if detector_kind == "mm_grounding_dino":
        dino = _build(device, lambda: MMGroundingDinoForObjectDetection(mm_grounding_dino_tiny_config()))
    else:
        dino = _build(device, lambda: GroundingDinoForObjectDetection(grounding_dino_tiny_config()))
    if segmenter_kind.startswith("sam2"):
        size = segmenter_kind.split("-")[1]
        seg, seg_proc = _build(device, lambda: Sam2Model(sam2_hiera_config(size))), Sam2ImageProcessor()
    else:
        seg, seg_proc = _build(device, lambda: SamModel(sam_vit_huge_config())), SamImageProcessor()
    return ChainParts(chain, ram, tags, dino, tiny.tiny_bert_tokenizer(), GroundingDinoImageProcessor(),
                      segmenter_kind.split("-")[0], seg, seg_proc)


def models_config(parts: ChainParts, batch: int, device: torch.device, compiled: bool) -> ModelsConfig:
    detector = "mm_grounding_dino" if isinstance(parts.detector, MMGroundingDinoForObjectDetection) else \
        "grounding_dino"
    return ModelsConfig(
        device=device.type, dtype="bfloat16", compile=compiled,
        tagger=TaggerConfig(kind="ram_plus", threshold=0.0, max_tags=MAX_TAGS, batch_size=batch,
                            image_size=parts.ram.cfg.swin.image_size),
        detector=DetectorConfig(kind=detector, box_threshold=0.0, text_threshold=0.0, batch_size=batch),
        nms=NmsConfig(iou_threshold=0.5, max_boxes=MAX_BOXES),
        segmenter=SegmenterConfig(kind=parts.segmenter_kind, batch_size=batch))


def pad_annotator(parts: ChainParts, batch: int, device: torch.device, compiled: bool = False) -> Annotator:
    """PAD's `Annotator` over `parts`, as `Annotator.setup()` builds it, with the wrappers made from models
    in memory instead of through the registry's checkpoint loaders."""
    cfg = models_config(parts, batch, device, compiled)
    vocab = build_vocabulary(parts.tags, cfg.tagger, DEFAULT_THRESHOLD)
    detector_cls = MMGroundingDinoDetector if cfg.detector.kind == "mm_grounding_dino" else GroundingDinoDetector
    segmenter_cls = Sam2Segmenter if parts.segmenter_kind == "sam2" else SamSegmenter
    wrappers = {
        "tagger": RamTagger(parts.ram, vocab, cfg.tagger, device, cfg.dtype, {"name": "ram_plus"}, compiled=compiled),
        "detector": detector_cls(parts.detector, parts.tokenizer, parts.detector_processor, cfg.detector, device,
                                 cfg.dtype, None),
        "segmenter": segmenter_cls(parts.segmenter, parts.segmenter_processor, cfg.segmenter, device, cfg.dtype,
                                   None, compiled=compiled),
    }
    annotator = Annotator(cfg)
    for stage in annotator.stages:
        if isinstance(stage, ModelStage):
            stage.model = wrappers[stage.role]
    annotator.device = device
    annotator.sync_timings = True  # the table's ms per stage; bench/gpu_annotate.py times without it too
    return annotator


def restore_text_backbone(parts: ChainParts) -> None:
    """The Grounding DINO wrapper wraps the text encoder in its cache; unwrap it for the next user."""
    backbone = parts.detector.model.text_backbone
    parts.detector.model.text_backbone = getattr(backbone, "backbone", backbone)


def reset_timings(annotator: Annotator) -> None:
    annotator.timings = ChainTimings()


def free() -> None:
    """Collect what the caller dropped and hand cached GPU blocks back (between sections)."""
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextlib.contextmanager
def peak_memory(device: torch.device) -> Any:
    """Yields a dict that holds the peak GiB allocated on `device` inside the block (None on CPU)."""
    out: dict[str, float | None] = {"gib": None}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    yield out
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        out["gib"] = torch.cuda.max_memory_allocated(device) / 2**30
