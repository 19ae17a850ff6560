"""The stage-1 model: frozen CLIP vision tower -> trainable projector -> frozen causal LM.

`PatchAlignedVLM(vision, projector, llm)` freezes the vision tower and the LLM (gradient
checkpointing on the LLM is enabled by the loader; activations still back-propagate through it to the
projector). `forward(batch)` takes a `PatchCollator` batch and returns the caption cross-entropy and
the patch-alignment loss (paper eq. 5) as separate terms; the caller weights them with beta. Only
caption positions get logits (`logits_to_keep`), so the 576 vision positions cost no vocab projection.
`project_images(pixel_values)` is the public entry for analysis (issue 6).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from trainer.data.collate import IGNORE_INDEX, normalize_pixels
from trainer.data.text_embeddings import tag_embeddings
from trainer.losses import patch_alignment_loss, region_embeddings


class PatchAlignedVLM(nn.Module):
    def __init__(self, vision: nn.Module, projector: nn.Module, llm: nn.Module, select_layer: int = -2,
                 drop_cls: bool = True, image_mean: tuple[float, ...] = (0.48145466, 0.4578275, 0.40821073),
                 image_std: tuple[float, ...] = (0.26862954, 0.26130258, 0.27577711)):
        super().__init__()
        # The processor's normalisation, applied here to uint8 batches (see trainer.data.collate).
        self.register_buffer("image_mean", torch.tensor(image_mean, dtype=torch.float32), persistent=False)
        self.register_buffer("image_std", torch.tensor(image_std, dtype=torch.float32), persistent=False)
        self.vision, self.projector, self.llm = vision, projector, llm
        self.select_layer, self.drop_cls = select_layer, drop_cls
        self.vision.requires_grad_(False)
        self.llm.requires_grad_(False)
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

    def caption_loss(self, tokens: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the caption given `[BOS] + vision tokens`; vision positions carry no label."""
        b, m, _ = tokens.shape
        text = self.llm.get_input_embeddings()(input_ids)
        embeds = torch.cat([text[:, :1], tokens.to(text.dtype), text[:, 1:]], dim=1)
        ones = attention_mask.new_ones(b, m)
        attention = torch.cat([attention_mask[:, :1], ones, attention_mask[:, 1:]], dim=1)
        # Position p predicts token p + 1; the first caption token is predicted from the last vision token.
        keep = torch.arange(m, embeds.shape[1] - 1, device=embeds.device)
        logits = self.llm(inputs_embeds=embeds, attention_mask=attention, logits_to_keep=keep,
                          use_cache=False).logits
        targets = labels[:, 1:]
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                               ignore_index=IGNORE_INDEX)

    def forward(self, batch: dict[str, torch.Tensor], with_patch_loss: bool = True) -> dict[str, torch.Tensor]:
        tokens = self.project_images(batch["pixel_values"])
        out = {"caption_loss": self.caption_loss(tokens, batch["input_ids"], batch["attention_mask"],
                                                 batch["labels"])}
        if with_patch_loss:
            v = region_embeddings(tokens, batch["region_masks"])
            t = self.text_targets(batch["tag_ids"], batch["tag_mask"])
            out["patch_loss"] = patch_alignment_loss(v, t, batch["region_valid"])
        return out
