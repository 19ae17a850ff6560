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

from typing import Any, Sequence

import numpy as np
import torch
from transformers import CLIPImageProcessor, CLIPModel

from pad_pipeline.annotate.config import ModelsConfig, TaggerConfig
from pad_pipeline.annotate.models import preprocess as pp
from pad_pipeline.annotate.models.base import TagResult, images_to_device
from pad_pipeline.annotate.models.hf_loading import autocast, load_text_image_model, provenance
from pad_pipeline.annotate.models.tiny import tiny_clip
from pad_pipeline.annotate.models.vocabulary import build_vocabulary, packaged_tags, read_tag_list, select_tags
from pad_pipeline.core.runtime import TINY_RANDOM

PROMPT = "a photo of a {tag}."
DEFAULT_THRESHOLD_X_UNIFORM = 5.0
_TEXT_BATCH = 256


class ClipTagger:
    """CLIP zero-shot tagger over a fixed vocabulary; see the module docstring for the scoring."""

    def __init__(self, model: CLIPModel, tokenizer: Any, processor: CLIPImageProcessor, tags: list[str],
                 cfg: TaggerConfig, device: torch.device, dtype: str, revision: str | None):
        # PreTrainedModel.to is @wraps(nn.Module.to): its stub takes the device for `self`
        self.model = model.to(device).eval()  # type: ignore[arg-type]
        self.tokenizer, self.cfg, self.device, self.dtype = tokenizer, cfg, device, dtype
        self.revision = revision
        self.vocab = build_vocabulary(tags, cfg, DEFAULT_THRESHOLD_X_UNIFORM / len(tags))
        self.norm = pp.Normalization.from_processor(processor)
        self.mode = pp.interpolation(processor.resample)
        self.size, self.crop = processor.size, (processor.crop_size if processor.do_center_crop else None)
        self.text_embeds = self._embed_vocab()  # (V, D) unit-norm float32, on device
        self.logit_scale = float(self.model.logit_scale.detach().exp())

    @torch.inference_mode()
    def _embed_vocab(self) -> torch.Tensor:
        prompts = [PROMPT.format(tag=t) for t in self.vocab.tags]
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
            # processor sizes are SizeDicts (stubs say dict): an unset edge is None
            if shortest := self.size.get("shortest_edge"):
                size = pp.shortest_edge_size(h, w, shortest)
            else:
                size = (self.size["height"], self.size["width"])
            im = pp.resize(im, size, self.mode)
            if self.crop is not None:
                im = pp.center_crop(im, (self.crop["height"], self.crop["width"]))
            out.append(pp.normalize(im, self.norm))
        return torch.stack(out)

    @torch.inference_mode()
    def probabilities(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """(B, V) softmax over the vocabulary, float32 on the device."""
        probs = []
        for start in range(0, len(images), self.cfg.batch_size):
            batch = images[start:start + self.cfg.batch_size]
            # Always batch_size rows: an image's scores must not depend on its batch (preprocess.fill_batch).
            pixels = pp.fill_batch(self.pixel_values(images_to_device(batch, self.device)), self.cfg.batch_size)
            with autocast(self.device, self.dtype):
                feats = self.model.get_image_features(pixel_values=pixels).pooler_output.float()
            feats = feats / feats.norm(dim=-1, keepdim=True)
            probs.append((self.logit_scale * feats @ self.text_embeds.T).softmax(dim=-1)[:len(batch)])
        return torch.cat(probs) if probs else torch.zeros(0, len(self.vocab), device=self.device)

    def tag(self, images: Sequence[np.ndarray]) -> list[TagResult]:
        return select_tags(self.probabilities(images), self.vocab, self.cfg.max_tags)

    def provenance(self) -> dict[str, str | None]:
        return provenance("clip", self.cfg.checkpoint, self.revision)

    def stats(self) -> dict[str, Any]:
        return {}


def build_clip_tagger(cfg: TaggerConfig, models: ModelsConfig, device: torch.device) -> ClipTagger:
    tags = read_tag_list(cfg.tag_list) if cfg.tag_list else packaged_tags()
    tags = list(dict.fromkeys(tags))  # a duplicated tag would split its probability mass
    if cfg.checkpoint == TINY_RANDOM:
        model, tokenizer, processor = tiny_clip(models.seed)
        revision = None
    else:
        model, tokenizer, processor, revision = load_text_image_model(
            CLIPModel, CLIPImageProcessor, cfg.checkpoint, cfg.revision, "models.tagger.checkpoint")
    return ClipTagger(model, tokenizer, processor, tags, cfg, device, models.dtype, revision)
