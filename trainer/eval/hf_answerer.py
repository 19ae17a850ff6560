"""Answers from a transformers Llava folder: PAD's `RUN/export-hf`, or any LLaVA-1.5 in that format.

`stage2:` may name such a folder (or `hub:` + a hub id, e.g. `hub:llava-hf/llava-1.5-7b-hf`) instead of a
`pad sft` run, so a published model is evaluated by the same prompts, parsing and scoring as PAD's own runs. The
model is `LlavaForConditionalGeneration` with its `AutoProcessor`: the processor's chat template renders the
question (an image item, then the text, then the generation prompt), its image processor prepares the
image (PAD's exports pad to a square as training did), rows are left-padded and decoding is greedy up to
EOS. For a PAD export the answers equal those of the run it was exported from (tested).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence, cast

import torch
from transformers import AutoProcessor, GenerationConfig, LlavaForConditionalGeneration

from pad_pipeline.core.errors import PadError
from trainer.eval.config import GenerationConfig as Settings
from trainer.eval.generate import Query
from trainer.eval.hf_source import HUB_PREFIX
from trainer.eval.items import open_image
from trainer.eval.subject import device_and_dtype


def hf_messages(question: str | None) -> list[dict[str, Any]]:
    content: list[dict[str, str]] = [{"type": "image"}]
    if question is not None:
        content.append({"type": "text", "text": question})
    return [{"role": "user", "content": content}]


class HfAnswerer:
    def __init__(self, source: str, settings: Settings):
        self.source, self.settings = source.removeprefix(HUB_PREFIX), settings
        self.model: Any = None
        self.processor: Any = None

    def _load(self) -> None:
        device, dtype = device_and_dtype(self.settings)
        try:
            model = cast(Any, LlavaForConditionalGeneration.from_pretrained(self.source, dtype=dtype))
            self.model = model.to(device).eval()
            self.processor = AutoProcessor.from_pretrained(self.source)
        except (OSError, ValueError) as e:
            raise PadError(f"{self.source}: cannot load a transformers Llava model ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else ''})") from None
        self.processor.tokenizer.padding_side = "left"

    @torch.inference_mode()
    def _batch(self, queries: Sequence[Query], config: GenerationConfig) -> list[str]:
        texts = [self.processor.apply_chat_template(hf_messages(q.question), add_generation_prompt=True)
                 for q in queries]
        images = [open_image(q.image) for q in queries]
        inputs = self.processor(images=images, text=texts, return_tensors="pt", padding=True)
        inputs = inputs.to(self.model.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        out = self.model.generate(**inputs, generation_config=config)
        new = out[:, inputs["input_ids"].shape[1]:]
        return [t.strip() for t in self.processor.tokenizer.batch_decode(new, skip_special_tokens=True)]

    def answers(self, queries: Sequence[Query], max_new_tokens: int,
                progress: Callable[[int], None] | None = None) -> list[str]:
        if self.model is None:
            self._load()
        tok = self.processor.tokenizer
        config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                  eos_token_id=tok.eos_token_id,
                                  pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
        answers: list[str] = []
        size = self.settings.batch_size
        for start in range(0, len(queries), size):
            answers += self._batch(queries[start:start + size], config)
            if progress is not None:
                progress(len(answers))
        return answers

    def close(self) -> None:
        self.model = self.processor = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
