"""The tokenizer-only check of conversation data: `pad sft MANIFEST --check`, and the index `pad sft` builds.

`TokenChecker(tokenizer, template, max_length, image_tokens)` tokenises batches of checked entries exactly
as training does (`chat_tokens`: offsets, the fit to `max_length` with each image counted as its tokens) and
names those training would refuse. `check_data(cfg)` streams the JSON once through the structural checks,
the image-file check and the TokenChecker, without a model and writing nothing, so every bad sample is
listed by id (image decoding is left to training).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field

from pad_pipeline.core.errors import PadError
from trainer.config.sft import SftConfig
from trainer.data.chat.conversations import BadSample, Conversation
from trainer.data.chat.index import scan_entries
from trainer.data.chat.templates import ConversationTemplate, get_template
from trainer.data.chat.tokens import (
    BadSampleError,
    check_template_tokens,
    encode_chunks,
    fit_length,
    label_tokens,
    split_chunks,
)
from trainer.models.loading import image_token_count, load_tokenizer
from trainer.run_layout import SKIPPED_FILE, RunLayout


@dataclass
class CheckReport:
    entries: int = 0
    bad: list[BadSample] = field(default_factory=list)
    seconds: float = 0.0

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


def _log(message: str) -> None:
    print(f"pad sft: {message}", file=sys.stderr)


def _reasons(bad: list) -> str:
    counts: dict[str, int] = {}
    for b in bad:
        counts[b.reason] = counts.get(b.reason, 0) + 1
    return ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))


def check(cfg: SftConfig) -> int:
    report = check_data(cfg)
    for b in report.bad:
        print(b.line())
    _log(f"checked {report.entries} entries of {cfg.data.path} in {report.seconds:.1f}s "
         f"({report.seconds_per_100k():.1f}s per 100K): {len(report.bad)} bad"
         + (f" ({_reasons(report.bad)})" if report.bad else ""))
    return 1 if report.bad and cfg.data.on_bad_sample == "error" else 0


def prepare_index(cfg: SftConfig, resume_from: str | None) -> int:
    """Build (or reuse) the run's index, every entry checked (tokenizer included); returns the number of
    trainable entries. A resumed run must read the data its checkpoint was trained on."""
    from trainer.data.chat.index import build_index, fingerprint, index_matches, index_path, load_index
    from trainer.training import checkpoint

    path = index_path(cfg.train.output_dir)
    if resume_from is not None:
        trained_on = checkpoint.read_state(resume_from).get("plan", {}).get("fingerprint")
        if trained_on != fingerprint(cfg.data.path):
            raise PadError(f"{cfg.data.path}: changed since {resume_from} was written; resume needs the same data")
    checks = {"template": cfg.data.template, "max_length": cfg.model.llm.max_length, "image_folder":
              cfg.data.image_folder, "check_images": cfg.data.check_images,
              "model": cfg.model.model_dump(mode="json", include={"vision", "llm", "projector"})}
    if index_matches(path, cfg.data.path, checks):
        return int(load_index(path).valid.sum())
    checker = TokenChecker.for_config(cfg)  # a template the tokenizer cannot express fails here, in seconds
    summary = build_index(cfg.data.path, cfg.data.image_folder, path, checker.template.control,
                          cfg.data.check_images, checker, checks)
    good = summary.entries - len(summary.bad)
    _log(f"indexed {summary.entries} entries of {cfg.data.path} in {summary.seconds:.1f}s -> {path}")
    if summary.bad:
        first = summary.bad[0]
        if cfg.data.on_bad_sample == "error":
            os.remove(path)
            raise PadError(f"{cfg.data.path}: {len(summary.bad)} bad entries ({_reasons(summary.bad)}), first "
                           f"{first.id}: {first.reason} ({first.detail}); list them with `pad sft MANIFEST --check` "
                           f"or set data.on_bad_sample: skip")
        with open(RunLayout(cfg.train.output_dir).skipped, "w") as f:
            for b in summary.bad:
                f.write(json.dumps({"id": b.id, "reason": b.reason, "detail": b.detail}) + "\n")
        _log(f"skipping {len(summary.bad)} bad entries ({_reasons(summary.bad)}); listed in {SKIPPED_FILE}")
    if not good:
        raise PadError(f"{cfg.data.path}: no entry to train on")
    return good
