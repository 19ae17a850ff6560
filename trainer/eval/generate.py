"""Batched greedy generation with PAD's VLM: (image, question) queries -> answer texts.

A query is rendered with the run's conversation template exactly as training rendered a human turn (the
image first, then the question; `plain` has no question: stage 1's `[BOS] <image>`), followed by the
template's generation prompt (`ASSISTANT:` for vicuna_v1). Images go through the run's processor geometry
(`image_aspect: pad` is LLaVA's expand-to-square), as in training. Rows are left-padded so every row's
answer starts at the same step; decoding is greedy, stops at EOS or the template's stop string, and the
stop string is cut from the answer. Queries are read and preprocessed by a DataLoader (`num_workers`
processes) while the model generates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence, cast

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2 import functional as tvF
from transformers import GenerationConfig, PreTrainedTokenizerBase

from trainer.constants import IMAGE_TOKEN
from trainer.data.chat.templates import ConversationTemplate, Rendered, Turn
from trainer.data.chat.tokens import encode_chunks, label_tokens, split_chunks
from trainer.data.geometry import ImageGeometry, ProcessorSpec
from trainer.eval.items import ImageRef, open_image
from trainer.models.vlm import PatchAlignedVLM


@dataclass(frozen=True)
class Query:
    """One generation request: an image and the question asked about it (None: no instruction)."""

    image: ImageRef
    question: str | None = None


def prompt_ids(tokenizer: PreTrainedTokenizerBase, template: ConversationTemplate, question: str | None) -> list[int]:
    """[BOS] + the prompt's ids, IMAGE_TOKEN_INDEX where the image goes, ending with the generation prompt."""
    content = IMAGE_TOKEN if question is None else f"{IMAGE_TOKEN}\n{question}"
    text = template.render([Turn("human", content)]).text + template.generation_prompt
    encoded = encode_chunks(tokenizer, [chunk for _, chunk in split_chunks(text)])
    ids, _ = label_tokens(Rendered(text, ()), encoded, tokenizer.bos_token_id)
    return ids


def image_pixels(image: ImageRef, spec: ProcessorSpec) -> torch.Tensor:
    """uint8 [3, S, S]: the image in the processor geometry (what the VLM saw in training)."""
    pixels = tvF.pil_to_tensor(open_image(image))
    height, width = pixels.shape[1:]
    return ImageGeometry.plan(int(width), int(height), spec).apply(pixels, spec)


class _Queries(Dataset):
    def __init__(self, queries: Sequence[Query], tokenizer: PreTrainedTokenizerBase, template: ConversationTemplate,
                 spec: ProcessorSpec):
        self.queries, self.tokenizer, self.template, self.spec = queries, tokenizer, template, spec

    def __len__(self) -> int:
        return len(self.queries)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, list[int]]:
        q = self.queries[i]
        return image_pixels(q.image, self.spec), prompt_ids(self.tokenizer, self.template, q.question)


def _collate(rows: list[tuple[torch.Tensor, list[int]]]) -> tuple[torch.Tensor, list[list[int]]]:
    return torch.stack([pixels for pixels, _ in rows]), [ids for _, ids in rows]


def left_pad(embeds: torch.Tensor, attention: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded rows [B, T, D] / [B, T] -> the same rows left-padded (generation appends on the right)."""
    length = attention.shape[1]
    shift = length - attention.sum(1)
    source = (torch.arange(length, device=attention.device)[None, :] - shift[:, None]) % length
    return (torch.gather(embeds, 1, source[..., None].expand_as(embeds)), torch.gather(attention, 1, source))


def cut_at_stop(text: str, stop: str) -> str:
    """The answer up to the template's stop string (exclusive), stripped."""
    return (text.split(stop, 1)[0] if stop else text).strip()


class Generator:
    """Greedy answers of one VLM, in batches, on the device its parameters are on."""

    def __init__(self, model: PatchAlignedVLM, tokenizer: PreTrainedTokenizerBase, template: ConversationTemplate,
                 spec: ProcessorSpec, max_new_tokens: int = 32):
        self.model, self.tokenizer, self.template, self.spec = model, tokenizer, template, spec
        stop = template.stop.strip() or template.stop  # "\n" stays "\n"; " </s>"-like stops lose the space
        self.stop = stop
        eos = tokenizer.eos_token_id
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
        self.config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                       eos_token_id=eos, pad_token_id=pad,
                                       stop_strings=[stop] if stop and stop != tokenizer.eos_token else None)

    @property
    def device(self) -> torch.device:
        return next(self.model.llm.parameters()).device

    @torch.inference_mode()
    def batch(self, pixels: torch.Tensor, ids: list[list[int]]) -> list[str]:
        """Answers for one batch: uint8 images [B, 3, S, S] and their prompt ids."""
        device = self.device
        longest = max(len(row) for row in ids)
        input_ids = torch.full((len(ids), longest), self.config.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros((len(ids), longest), dtype=torch.long)
        for b, row in enumerate(ids):
            input_ids[b, :len(row)] = torch.tensor(row)
            mask[b, :len(row)] = 1
        tokens = self.model.project_images(pixels.to(device))
        embeds, attention, _ = self.model.splice(tokens, input_ids.to(device), mask.to(device))
        embeds, attention = left_pad(embeds, attention)
        llm = cast(Any, self.model.llm)  # a causal LM: GenerationMixin, which the stubs do not see here
        out = llm.generate(inputs_embeds=embeds, attention_mask=attention, generation_config=self.config,
                                      tokenizer=self.tokenizer)
        texts = self.tokenizer.batch_decode(out, skip_special_tokens=True)
        return [cut_at_stop(t, self.stop) for t in texts]

    def answers(self, queries: Sequence[Query], batch_size: int = 16, num_workers: int = 0,
                progress: Callable[[int], None] | None = None) -> list[str]:
        """Answers to `queries`, in order; `progress(done)` after every batch."""
        loader = DataLoader(_Queries(queries, self.tokenizer, self.template, self.spec), batch_size=batch_size,
                            num_workers=num_workers, collate_fn=_collate)
        answers: list[str] = []
        for pixels, ids in loader:
            answers += self.batch(pixels, ids)
            if progress is not None:
                progress(len(answers))
        return answers
