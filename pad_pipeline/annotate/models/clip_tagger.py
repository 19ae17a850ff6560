"""Zero-shot image tagging with CLIP (`models.tagger.kind: clip`).

The vocabulary (`tag_list`, else the packaged `default_tags.txt`) is embedded ONCE at build time from
the prompt "a photo of a {tag}." and kept on the device. `tag()` preprocesses uint8 images on the device
exactly like the checkpoint's CLIPImageProcessor (shortest-side resize, centre crop, CLIP mean/std),
runs the image tower in batches and scores every tag.

Scores are a softmax over the vocabulary of the cosine similarities times the model's logit scale
(CLIP's own zero-shot classifier; CLIP has no calibrated per-tag bias that a sigmoid would need). A
softmax spreads mass over the whole vocabulary, so the default threshold is relative to it: a tag is
kept when it is `DEFAULT_THRESHOLD_X_UNIFORM` times likelier than uniform (5 / V). `threshold` (absolute)
or a per-tag `tag_thresholds` file override that. `image_size` is RAM's knob: CLIP's input geometry
is its checkpoint's (224 or 336 for the OpenAI models).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from transformers import CLIPImageProcessor, CLIPModel

from pad_pipeline.annotate.config import ModelsConfig, TaggerConfig
from pad_pipeline.annotate.models import preprocess as pp
from pad_pipeline.annotate.models.base import TINY_RANDOM, TagResult, images_to_device
from pad_pipeline.annotate.models.hf_loading import autocast, load_text_image_model, provenance
from pad_pipeline.annotate.models.tiny import default_tags, tiny_clip
from pad_pipeline.core.errors import ConfigError

PROMPT = "a photo of a {tag}."
DEFAULT_THRESHOLD_X_UNIFORM = 5.0
_TEXT_BATCH = 256


def read_lines(path: str, field: str) -> list[str]:
    """Non-empty stripped lines of a text file; a missing file is a ConfigError naming the field."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"field '{field}': cannot read {path!r}: {exc.strerror}") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


def tag_thresholds(cfg: TaggerConfig, n_tags: int) -> torch.Tensor:
    """Per-tag thresholds: global `threshold`, else the `tag_thresholds` file, else 5x uniform."""
    if cfg.threshold is not None:
        return torch.full((n_tags,), float(cfg.threshold))
    if cfg.tag_thresholds is not None:
        lines = read_lines(cfg.tag_thresholds, "models.tagger.tag_thresholds")
        if len(lines) != n_tags:
            raise ConfigError(f"field 'models.tagger.tag_thresholds': {cfg.tag_thresholds} has {len(lines)} "
                              f"values for {n_tags} tags")
        try:
            return torch.tensor([float(v) for v in lines])
        except ValueError as exc:
            raise ConfigError(f"field 'models.tagger.tag_thresholds': {cfg.tag_thresholds}: {exc}") from exc
    return torch.full((n_tags,), DEFAULT_THRESHOLD_X_UNIFORM / n_tags)


def select_tags(probs: torch.Tensor, thresholds: torch.Tensor, vocab: Sequence[str], deny: set[str],
                max_tags: int) -> TagResult:
    """Tags of one image: prob > threshold, not denied, best first, at most `max_tags` (pure)."""
    order = torch.argsort(probs, descending=True, stable=True).tolist()
    above = (probs > thresholds).tolist()
    values = probs.tolist()
    tags, scores = [], []
    for i in order:
        if len(tags) == max_tags:
            break
        if above[i] and vocab[i].lower() not in deny:
            tags.append(vocab[i])
            scores.append(float(values[i]))
    return TagResult(tags, scores)


class ClipTagger:
    """CLIP zero-shot tagger over a fixed vocabulary; see the module docstring for the scoring."""

    def __init__(self, model: CLIPModel, tokenizer: Any, processor: CLIPImageProcessor, vocab: list[str],
                 cfg: TaggerConfig, device: torch.device, dtype: str, revision: str | None):
        self.model = model.to(device).eval()
        self.tokenizer, self.vocab, self.cfg, self.device, self.dtype = tokenizer, vocab, cfg, device, dtype
        self.revision = revision
        self.deny = {t.strip().lower() for t in cfg.deny_list}
        self.thresholds = tag_thresholds(cfg, len(vocab)).to(device)
        self.norm = pp.Normalization.from_processor(processor)
        self.mode = pp.interpolation(processor.resample)
        self.size, self.crop = processor.size, (processor.crop_size if processor.do_center_crop else None)
        self.text_embeds = self._embed_vocab()  # (V, D) unit-norm float32, on device
        self.logit_scale = float(self.model.logit_scale.detach().exp())

    @torch.inference_mode()
    def _embed_vocab(self) -> torch.Tensor:
        prompts = [PROMPT.format(tag=t) for t in self.vocab]
        max_len = self.model.config.text_config.max_position_embeddings
        chunks = []
        for start in range(0, len(prompts), _TEXT_BATCH):
            enc = self.tokenizer(prompts[start:start + _TEXT_BATCH], padding=True, truncation=True,
                                 max_length=max_len, return_tensors="pt").to(self.device)
            with autocast(self.device, self.dtype):
                out = self.model.get_text_features(input_ids=enc["input_ids"],
                                                   attention_mask=enc["attention_mask"])
            chunks.append(out.pooler_output.float())
        embeds = torch.cat(chunks)
        return embeds / embeds.norm(dim=-1, keepdim=True)

    def pixel_values(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """uint8 (3, H, W) on device -> (B, 3, S, S) float32, as CLIPImageProcessor would produce."""
        out = []
        for im in images:
            h, w = im.shape[-2:]
            if self.size.shortest_edge:
                size = pp.shortest_edge_size(h, w, self.size.shortest_edge)
            else:
                size = (self.size.height, self.size.width)
            im = pp.resize(im, size, self.mode)
            if self.crop is not None:
                im = pp.center_crop(im, (self.crop.height, self.crop.width))
            out.append(pp.normalize(im, self.norm))
        return torch.stack(out)

    @torch.inference_mode()
    def probabilities(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """(B, V) softmax over the vocabulary, float32 on the device."""
        probs = []
        for start in range(0, len(images), self.cfg.batch_size):
            batch = images[start:start + self.cfg.batch_size]
            pixels = self.pixel_values(images_to_device(batch, self.device))
            with autocast(self.device, self.dtype):
                feats = self.model.get_image_features(pixel_values=pixels).pooler_output.float()
            feats = feats / feats.norm(dim=-1, keepdim=True)
            probs.append((self.logit_scale * feats @ self.text_embeds.T).softmax(dim=-1))
        return torch.cat(probs) if probs else torch.zeros(0, len(self.vocab), device=self.device)

    def tag(self, images: Sequence[np.ndarray]) -> list[TagResult]:
        probs = self.probabilities(images).cpu()
        thresholds = self.thresholds.cpu()
        return [select_tags(p, thresholds, self.vocab, self.deny, self.cfg.max_tags) for p in probs]

    def provenance(self) -> dict[str, str | None]:
        return provenance("clip", self.cfg.checkpoint, self.revision)


def build_clip_tagger(cfg: TaggerConfig, models: ModelsConfig, device: torch.device) -> ClipTagger:
    vocab = read_lines(cfg.tag_list, "models.tagger.tag_list") if cfg.tag_list else default_tags()
    if not vocab:
        raise ConfigError(f"field 'models.tagger.tag_list': {cfg.tag_list} has no tags")
    vocab = list(dict.fromkeys(vocab))  # a duplicated tag would split its probability mass
    if cfg.checkpoint == TINY_RANDOM:
        model, tokenizer, processor = tiny_clip(models.seed)
        revision = None
    else:
        model, tokenizer, processor, revision = load_text_image_model(
            CLIPModel, CLIPImageProcessor, cfg.checkpoint, cfg.revision, "models.tagger.checkpoint")
    return ClipTagger(model, tokenizer, processor, vocab, cfg, device, models.dtype, revision)
