"""The VLM: frozen CLIP vision tower -> projector -> causal LM, with image tokens spliced at placeholders.

`PatchAlignedVLM(vision, projector, llm, train_llm=False)` freezes the vision tower; the LLM is frozen in
stage 1 and trained in stage 2 (gradient checkpointing is enabled by the loader). `input_ids` carry
`IMAGE_TOKEN_INDEX` (-200, LLaVA's) once per image; `splice` replaces each by the image's projected tokens
(images in order of appearance, text-only rows have none). `forward(batch)` returns the language-model loss
as `caption_loss` (stage 1: the caption after `[BOS] <image>`) and, for stage 1, the patch-alignment loss
(paper eq. 5). Only positions whose next token has a label get logits (`logits_to_keep`), so vision positions
cost no vocab projection. `logits(...)` is the plain forward over the expanded sequence (for comparing with
exported models); `project_images(pixel_values)` is the entry for analysis.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedModel

from trainer.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from trainer.models.losses import patch_alignment_loss, region_embeddings
from trainer.models.text_embeddings import tag_embeddings


def normalize_pixels(pixels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> the processor's float input: (x / 255 - mean) / std (mean/std of shape [3])."""
    scale = 1.0 / (255.0 * std.float())
    return pixels.float() * scale.view(1, 3, 1, 1) - (mean.float() / std.float()).view(1, 3, 1, 1)


class PatchAlignedVLM(nn.Module):
    # Declared for the type checker: nn.Module.__getattr__ types submodules as `Tensor | Module`.
    vision: PreTrainedModel
    llm: PreTrainedModel
    image_mean: torch.Tensor
    image_std: torch.Tensor

    def __init__(self, vision: PreTrainedModel, projector: nn.Module, llm: PreTrainedModel, select_layer: int = -2,
                 drop_cls: bool = True, image_mean: tuple[float, ...] = (0.48145466, 0.4578275, 0.40821073),
                 image_std: tuple[float, ...] = (0.26862954, 0.26130258, 0.27577711), train_llm: bool = False):
        super().__init__()
        # The processor's normalisation, applied here to uint8 batches (see trainer.data.collate); made on the
        # towers' device, so a VLM assembled from towers already on a GPU has no CPU buffer left behind.
        device = next(vision.parameters()).device
        self.register_buffer("image_mean", torch.tensor(image_mean, dtype=torch.float32, device=device),
                             persistent=False)
        self.register_buffer("image_std", torch.tensor(image_std, dtype=torch.float32, device=device),
                             persistent=False)
        self.vision, self.projector, self.llm = vision, projector, llm
        self.select_layer, self.drop_cls = select_layer, drop_cls
        self.vision.requires_grad_(False)
        self.llm.requires_grad_(train_llm)
        self.projector.requires_grad_(True)

    def train(self, mode: bool = True) -> "PatchAlignedVLM":
        super().train(mode)
        self.vision.eval()  # frozen; train mode would only matter for dropout, which it must not use
        return self

    @torch.no_grad()
    def vision_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Patch features of layer `select_layer`, CLS dropped: [B, N, Dv] (576 x 1024 for ViT-L/14-336).

        `pixel_values`: uint8 images of the processor geometry, or the processor's float output."""
        if pixel_values.dtype == torch.uint8:
            pixel_values = normalize_pixels(pixel_values, self.image_mean, self.image_std)
        dtype = next(self.vision.parameters()).dtype
        out = self.vision(pixel_values=pixel_values.to(dtype), output_hidden_states=True)
        features = out.hidden_states[self.select_layer]
        return features[:, 1:] if self.drop_cls else features

    def project_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Projected vision tokens [B, M, D] in the LLM's embedding space (gradient to the projector)."""
        features = self.vision_features(pixel_values)
        dtype = next(self.projector.parameters()).dtype
        return self.projector(features.to(dtype))

    def text_targets(self, tag_ids: torch.Tensor, tag_mask: torch.Tensor) -> torch.Tensor:
        """t_p of every region: mean LLM input embedding of its tag's sub-tokens (no gradient)."""
        with torch.no_grad():
            return tag_embeddings(self.llm.get_input_embeddings(), tag_ids, tag_mask)

    def splice(self, tokens: torch.Tensor | None, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(inputs_embeds [B, T, D], attention [B, T], labels [B, T] or None): every IMAGE_TOKEN_INDEX of
        `input_ids` replaced by the next image's `tokens` [M, D] (labels IGNORE_INDEX there), rows right-padded."""
        text = self.llm.get_input_embeddings()(input_ids.clamp(min=0))
        rows, masks, targets = [], [], []
        image = 0
        for b in range(input_ids.shape[0]):
            at = (input_ids[b] == IMAGE_TOKEN_INDEX).nonzero().flatten().tolist()
            if at and (tokens is None or image + len(at) > tokens.shape[0]):
                have = 0 if tokens is None else len(tokens)
                raise ValueError(f"row {b}: more image placeholders than images ({have})")
            cuts = [-1, *at, input_ids.shape[1]]
            pieces, mask, target = [], [], []
            for k in range(len(cuts) - 1):
                lo, hi = cuts[k] + 1, cuts[k + 1]
                if k:
                    assert tokens is not None  # checked above: a row has no more placeholders than images
                    m = tokens[image].to(text.dtype)
                    image += 1
                    pieces.append(m)
                    mask.append(attention_mask.new_ones(len(m)))
                    target.append(input_ids.new_full((len(m),), IGNORE_INDEX))
                pieces.append(text[b, lo:hi])
                mask.append(attention_mask[b, lo:hi])
                if labels is not None:
                    target.append(labels[b, lo:hi])
            rows.append(torch.cat(pieces))
            masks.append(torch.cat(mask))
            if labels is not None:
                targets.append(torch.cat(target))
        embeds = nn.utils.rnn.pad_sequence(rows, batch_first=True)
        attention = nn.utils.rnn.pad_sequence(masks, batch_first=True)
        if labels is None:
            return embeds, attention, None
        return embeds, attention, nn.utils.rnn.pad_sequence(targets, batch_first=True, padding_value=IGNORE_INDEX)

    def _tokens(self, pixel_values: torch.Tensor | None) -> torch.Tensor | None:
        return None if pixel_values is None or not len(pixel_values) else self.project_images(pixel_values)

    def logits(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None = None,
               attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, T, V] of the expanded sequence (see `splice`); rows shorter than T are right-padded."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        embeds, attention, _ = self.splice(self._tokens(pixel_values), input_ids, attention_mask)
        return self.llm(inputs_embeds=embeds, attention_mask=attention, use_cache=False).logits

    def lm_loss(self, tokens: torch.Tensor | None, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy over the labelled positions (0, still connected, when none is)."""
        embeds, attention, targets = self.splice(tokens, input_ids, attention_mask, labels)
        assert targets is not None  # splice returns labels when given labels
        valid = targets[:, 1:] != IGNORE_INDEX
        if not valid.any():
            return embeds.sum() * 0.0
        # Position p predicts label p + 1: logits from the position before the first label to the end.
        first = int(valid.any(0).nonzero()[0])
        keep = torch.arange(first, embeds.shape[1] - 1, device=embeds.device)
        logits = self.llm(inputs_embeds=embeds, attention_mask=attention, logits_to_keep=keep,
                          use_cache=False).logits
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets[:, first + 1:].reshape(-1),
                               ignore_index=IGNORE_INDEX)

    def forward(self, batch: dict[str, torch.Tensor], with_patch_loss: bool = True) -> dict[str, torch.Tensor]:
        tokens = self._tokens(batch["pixel_values"])
        loss = self.lm_loss(tokens, batch["input_ids"], batch["attention_mask"], batch["labels"])
        used = int((batch["input_ids"] == IMAGE_TOKEN_INDEX).sum())
        if tokens is not None and used < len(tokens):  # images no row uses (a text-only batch's blank one):
            loss = loss + tokens[used:].sum() * 0.0     # keep the projector in the graph on every rank
        out = {"caption_loss": loss}
        if with_patch_loss:
            if tokens is None:
                raise ValueError("the patch loss needs images: this batch has none")
            v = region_embeddings(tokens, batch["region_masks"])
            t = self.text_targets(batch["tag_ids"], batch["tag_mask"])
            out["patch_loss"] = patch_alignment_loss(v, t, batch["region_valid"])
        return out
