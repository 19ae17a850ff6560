"""The tokenizer-only check of conversation data: `pad sft MANIFEST --check`, and the index `pad sft` builds.

`TokenChecker(tokenizer, template, max_length, image_tokens)` tokenises batches of checked entries exactly
as training does (`chat_tokens`: offsets, the fit to `max_length` with each image counted as its tokens) and
names those training would refuse. `check_data(cfg)` streams the JSON once through the structural checks,
the image-file check and the TokenChecker, without a model and writing nothing, so every bad sample is
listed by id (image decoding is left to training).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from trainer.data.chat_tokens import (
    BadSampleError,
    check_template_tokens,
    encode_chunks,
    fit_length,
    label_tokens,
    split_chunks,
)
from trainer.data.conversation_index import scan_entries
from trainer.data.conversations import BadSample, Conversation
from trainer.models.loading import image_token_count, load_tokenizer
from trainer.sft_config import SftConfig
from trainer.templates import ConversationTemplate, get_template


@dataclass
class CheckReport:
    entries: int = 0
    bad: list[BadSample] = field(default_factory=list)
    seconds: float = 0.0

    def counts(self) -> Counter:
        return Counter(b.reason for b in self.bad)

    def seconds_per_100k(self) -> float:
        return self.seconds / max(self.entries, 1) * 100_000


class TokenChecker:
    def __init__(self, tokenizer, template: ConversationTemplate, max_length: int, image_tokens: int):
        check_template_tokens(tokenizer, template)
        self.tokenizer, self.template = tokenizer, template
        self.max_length, self.image_tokens = max_length, image_tokens

    @classmethod
    def for_config(cls, cfg: SftConfig) -> "TokenChecker":
        """The checker of a manifest: its tokenizer and image token count, no model weights."""
        return cls(load_tokenizer(cfg.model.llm), get_template(cfg.data.template), cfg.model.llm.max_length,
                   image_token_count(cfg.model))

    def __call__(self, pending: list[tuple[int, Conversation]]) -> list[tuple[int, BadSample]]:
        rendered = [self.template.render(c.turns) for _, c in pending]
        chunked = [[c for _, c in split_chunks(r.text)] for r in rendered]
        flat = encode_chunks(self.tokenizer, [c for chunks in chunked for c in chunks])
        bad, at = [], 0
        for (index, conv), r, chunks in zip(pending, rendered, chunked, strict=True):
            encoded, at = flat[at:at + len(chunks)], at + len(chunks)
            try:
                ids, labels = label_tokens(r, encoded, self.tokenizer.bos_token_id)
                fit_length(ids, labels, self.max_length, self.image_tokens)
            except BadSampleError as e:
                bad.append((index, BadSample(conv.id, e.reason, e.detail)))
        return bad


def check_data(cfg: SftConfig) -> CheckReport:
    start = time.perf_counter()
    checker = TokenChecker.for_config(cfg)
    report = CheckReport()
    for _, _, _, parsed in scan_entries(cfg.data.path, cfg.data.image_folder, checker.template.control,
                                        cfg.data.check_images, checker):
        report.entries += 1
        if isinstance(parsed, BadSample):
            report.bad.append(parsed)
    report.seconds = time.perf_counter() - start
    return report
