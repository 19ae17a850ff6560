"""RAM / RAM++ tagger (`models.tagger.kind: ram | ram_plus`): the first model of the annotation chain.

Built once per worker: the tag list and thresholds are read from the manifest's paths, the network is
built for that vocabulary and the official checkpoint loaded strictly (`checkpoint.py`), or, for
`tiny-random`, a seeded tiny network over the tag list (default: the packaged tags). `tag()` moves the
uint8 images to the device and preprocesses them there as the official inference does (resize to
image_size x image_size, bilinear with antialiasing, back to uint8 like PIL, ImageNet mean/std), runs
`batch_size` images at a time (bf16/fp16 autocast on CUDA per `models.dtype`, fp32 on CPU) and returns
per image the tags above threshold with their sigmoid scores, best first.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torchvision.transforms.v2 import InterpolationMode

from pad_pipeline.annotate.config import ModelsConfig, TaggerConfig
from pad_pipeline.annotate.models import preprocess as pp
from pad_pipeline.annotate.models.base import TagResult, images_to_device
from pad_pipeline.annotate.models.compiling import compile_encoder
from pad_pipeline.annotate.models.hf_loading import autocast
from pad_pipeline.annotate.models.ram.checkpoint import load_official_state_dict, read_official_checkpoint
from pad_pipeline.annotate.models.ram.model import RamModel, ram_plus_swin_large_config, ram_swin_large_config
from pad_pipeline.annotate.models.ram.tiny import tiny_ram
from pad_pipeline.annotate.models.vocabulary import (
    Vocabulary,
    build_vocabulary,
    packaged_tags,
    read_tag_list,
    select_tags,
)
from pad_pipeline.core.errors import ConfigError
from pad_pipeline.core.runtime import TINY_RANDOM

IMAGENET = pp.Normalization(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
OFFICIAL_IMAGE_SIZE = 384  # both official checkpoints are Swin-L/384
DEFAULT_THRESHOLD = 0.68  # recognize-anything's `threshold` default, used when no per-class file is given


class RamTagger:
    """Scores every tag of the vocabulary per image; see the module docstring."""

    def __init__(self, model: RamModel, vocab: Vocabulary, cfg: TaggerConfig, device: torch.device,
                 dtype: str, provenance: dict[str, Any], compiled: bool = False):
        if model.cfg.num_classes != len(vocab):
            raise ValueError(f"model has {model.cfg.num_classes} classes, vocabulary {len(vocab)} tags")
        self.model = model.to(device).eval()
        if compiled:  # models.compile: the Swin image encoder
            compile_encoder(self.model.image_encoder)
        self.vocab, self.cfg, self.device, self.dtype = vocab, cfg, device, dtype
        self.image_size = model.cfg.swin.image_size
        self._provenance = provenance

    def pixel_values(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """uint8 (3, H, W) on the device -> (B, 3, S, S) float32 normalised."""
        size = (self.image_size, self.image_size)
        return torch.stack([pp.normalize(pp.resize(im, size, InterpolationMode.BILINEAR), IMAGENET)
                            for im in images])

    @torch.inference_mode()
    def logits(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """(B, C) float32 tag logits on the device, `batch_size` images per forward pass."""
        chunks = []
        step = self.cfg.batch_size
        for start in range(0, len(images), step):
            batch = images[start:start + step]
            # Always `step` rows, so an image's logits do not depend on its batch (preprocess.fill_batch).
            pixels = pp.fill_batch(self.pixel_values(images_to_device(batch, self.device)), step)
            with autocast(self.device, self.dtype):
                chunks.append(self.model(pixels).float()[:len(batch)])
        return torch.cat(chunks) if chunks else torch.zeros(0, len(self.vocab), device=self.device)

    def tag(self, images: Sequence[np.ndarray]) -> list[TagResult]:
        return select_tags(torch.sigmoid(self.logits(images)), self.vocab, self.cfg.max_tags)

    def provenance(self) -> dict[str, Any]:
        return dict(self._provenance)

    def stats(self) -> dict[str, Any]:
        return {}


def _tags(cfg: TaggerConfig) -> list[str]:
    if cfg.tag_list is not None:
        return read_tag_list(cfg.tag_list)
    if cfg.checkpoint == TINY_RANDOM:
        return packaged_tags()
    raise ConfigError("field 'models.tagger.tag_list': RAM/RAM++ need the tag list of their checkpoint "
                      "(ram_tag_list.txt, 4585 tags; see the README)")


def _build(cfg: TaggerConfig, models: ModelsConfig, device: torch.device, plus: bool) -> RamTagger:
    name = "ram_plus" if plus else "ram"
    tags = _tags(cfg)
    vocab = build_vocabulary(tags, cfg, DEFAULT_THRESHOLD)
    sha256: str | None = None
    loaded: dict[str, int | list[str]] = {}  # the strict load's report; none for tiny-random
    if cfg.checkpoint == TINY_RANDOM:
        model = tiny_ram(len(tags), cfg.image_size, plus, models.seed)
    else:
        if cfg.image_size != OFFICIAL_IMAGE_SIZE:
            raise ConfigError(f"field 'models.tagger.image_size': the official {name} checkpoint runs at "
                              f"{OFFICIAL_IMAGE_SIZE} px, got {cfg.image_size}")
        config = (ram_plus_swin_large_config if plus else ram_swin_large_config)(len(tags), cfg.image_size)
        state, sha256 = read_official_checkpoint(cfg.checkpoint)
        model = RamModel(config)
        report = load_official_state_dict(model, state, source=f"field 'models.tagger.checkpoint': {cfg.checkpoint}")
        loaded = report.summary()
        del state
    provenance = {"name": name, "checkpoint": cfg.checkpoint, "revision": cfg.revision, "sha256": sha256,
                  "tag_list": cfg.tag_list, "tag_thresholds": cfg.tag_thresholds, **loaded}
    return RamTagger(model, vocab, cfg, device, models.dtype, provenance, compiled=models.compile)


def build_ram_tagger(cfg: TaggerConfig, models: ModelsConfig, device: torch.device) -> RamTagger:
    """RAM (ram_swin_large_14m.pth), or its tiny random twin."""
    return _build(cfg, models, device, plus=False)


def build_ram_plus_tagger(cfg: TaggerConfig, models: ModelsConfig, device: torch.device) -> RamTagger:
    """RAM++ (ram_plus_swin_large_14m.pth), or its tiny random twin."""
    return _build(cfg, models, device, plus=True)
