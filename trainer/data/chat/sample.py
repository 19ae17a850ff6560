"""One conversation entry -> a stage-2 training sample: padded-to-square image, input ids, labels.

`SftSampleBuilder(...)(entry, index)` parses and checks the entry, tokenises it with the template
(`trainer.data.chat.tokens`: labels from offsets, text cut to `max_length`, image tokens never cut), reads and
decodes the image from the image folder and applies the processor geometry (`image_aspect: pad` is LLaVA's
expand-to-square with the mean colour). It never raises for bad data: it returns a `BadSample`, which the
loop turns into a named error or a counted skip (`data.on_bad_sample`). Runs in DataLoader workers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.io import ImageReadMode, decode_image

from pad_pipeline.core import storage
from trainer.data.chat.conversations import BadSample, Conversation, parse_entry
from trainer.data.chat.templates import ConversationTemplate
from trainer.data.chat.tokens import BadSampleError, tokenize_conversation
from trainer.data.geometry import ImageGeometry, ProcessorSpec


@dataclass
class SftSample:
    id: str
    pixels: torch.Tensor | None   # uint8 [3, S, S], None for a text-only entry
    input_ids: list[int]          # [BOS] + ids, IMAGE_TOKEN_INDEX where the image goes
    labels: list[int]
    truncated: bool = False


def load_image(folder: str, relative: str, spec: ProcessorSpec) -> torch.Tensor:
    """uint8 [3, S, S] of `folder/relative` in the processor geometry (raises on an unreadable image)."""
    data = storage.read_bytes(storage.join(folder, relative))
    image = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
    if image.ndim == 4:  # an animated GIF: its first frame
        image = image[0]
    height, width = image.shape[1:]
    return ImageGeometry.plan(int(width), int(height), spec).apply(image, spec)


class SftSampleBuilder:
    def __init__(self, tokenizer, template: ConversationTemplate, spec: ProcessorSpec, image_folder: str,
                 max_length: int, image_tokens: int, load_images: bool = True):
        self.tokenizer, self.template, self.spec = tokenizer, template, spec
        self.image_folder, self.max_length, self.image_tokens = image_folder, max_length, image_tokens
        self.load_images = load_images

    def tokenize(self, conversation: Conversation):
        return tokenize_conversation(self.tokenizer, self.template, conversation.turns, self.max_length,
                                     self.image_tokens)

    def __call__(self, entry: object, index: int) -> SftSample | BadSample:
        parsed = parse_entry(entry, index, self.template.control)
        if isinstance(parsed, BadSample):
            return parsed
        try:
            tokens = self.tokenize(parsed)
        except BadSampleError as e:
            return BadSample(parsed.id, e.reason, e.detail)
        pixels = None
        if parsed.image and self.load_images:
            try:
                pixels = load_image(self.image_folder, parsed.image, self.spec)
            except FileNotFoundError:
                return BadSample(parsed.id, "missing_image", f"{parsed.image} not under {self.image_folder}")
            except (RuntimeError, ValueError, OSError) as e:
                return BadSample(parsed.id, "image_decode", f"{parsed.image}: {str(e).splitlines()[0][:120]}")
        return SftSample(parsed.id, pixels, tokens.input_ids, tokens.labels, tokens.truncated)
