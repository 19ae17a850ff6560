"""A rendered conversation -> input ids and labels, derived from character offsets so they always line up.

The text after BOS is split at each `<image>`; every chunk is tokenised on its own (as LLaVA's
`tokenizer_image_token` does, so ids equal LLaVA's) with `return_offsets_mapping`, and the chunks are joined
with one `IMAGE_TOKEN_INDEX` (-200) per image. A token carries loss exactly when its characters lie inside a
loss span of the template (`Rendered.loss_spans`). Nothing is counted per turn, so there is no round length to
get wrong (LLaVA's "tokenization mismatch"). What can still go wrong is named (`BadSampleError`):
- `tokenization_mismatch`: a token crosses a span boundary, a span's visible characters are not all covered
  by its tokens (broken offsets), or an image placeholder lies inside an answer;
- `image_truncated`: the image tokens would not fit in `max_length` (text is cut, images never are);
- `no_target`: no token carries loss after cutting (never a silently all-ignored sample).
Cutting: a sample longer than `max_length` (each image counted as `image_tokens` positions) loses its last
tokens; the cut never reaches into an image because a sample whose image would not fit is refused instead.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pad_pipeline.core.errors import PadError
from trainer.constants import IGNORE_INDEX, IMAGE_TOKEN, IMAGE_TOKEN_INDEX
from trainer.data.chat.templates import ConversationTemplate, Rendered, Turn, get_template

_WHITESPACE = np.array([ord(c) for c in " \t\n\r\x0b\x0c\u00a0\u2009\u3000"], dtype=np.uint32)


class BadSampleError(Exception):
    """A sample that cannot be trained on, with a reason code (see trainer.data.chat.conversations.REASONS)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class Tokenized:
    input_ids: list[int]   # [BOS] + text ids, IMAGE_TOKEN_INDEX once per image
    labels: list[int]      # the target id where the token carries loss, else IGNORE_INDEX
    truncated: bool = False


def check_template_tokens(tokenizer, template: ConversationTemplate) -> None:
    """Each control string of the template must be one token of this tokenizer (else answers never end)."""
    for text in template.control:
        ids = tokenizer(text, add_special_tokens=False).input_ids
        if len(ids) != 1:
            raise PadError(f"template {template.name!r}: {text!r} is {len(ids)} tokens of this tokenizer, not one "
                           f"special token; use a tokenizer that defines it or another data.template")


def split_chunks(text: str) -> list[tuple[int, str]]:
    """(start offset, chunk) of the text between image placeholders."""
    chunks, start = [], 0
    for piece in text.split(IMAGE_TOKEN):
        chunks.append((start, piece))
        start += len(piece) + len(IMAGE_TOKEN)
    return chunks


def encode_chunks(tokenizer, chunks: Sequence[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
    """(ids, offsets) of each chunk, no special tokens added (one batched call of the fast tokenizer)."""
    if not getattr(tokenizer, "is_fast", False):
        raise PadError(f"{type(tokenizer).__name__}: a fast tokenizer (offset mapping) is needed to align labels")
    if not chunks:
        return []
    encodings = tokenizer.backend_tokenizer.encode_batch(list(chunks), add_special_tokens=False)
    return [(e.ids, e.offsets) for e in encodings]  # lists, read once each (attribute access copies)


def _mismatch(detail: str) -> BadSampleError:
    return BadSampleError("tokenization_mismatch", detail)


def _ranges_mask(starts: np.ndarray, ends: np.ndarray, length: int) -> np.ndarray:
    """bool [length]: characters inside any [start, end) range."""
    edges = np.zeros(length + 1, dtype=np.int64)
    np.add.at(edges, starts, 1)
    np.add.at(edges, ends, -1)
    return np.cumsum(edges[:length]) > 0


def _loss_mask(text: str, offsets: np.ndarray, spans: tuple[tuple[int, int], ...]) -> np.ndarray:
    """bool per token: inside a loss span; raises when a token crosses a span edge or a span's visible
    characters are not all covered by the tokens inside it."""
    if not spans:
        return np.zeros(len(offsets), dtype=bool)
    a, b = offsets[:, 0], offsets[:, 1]
    starts, ends = np.array([s for s, _ in spans]), np.array([e for _, e in spans])
    edges = np.sort(np.concatenate([starts, ends]))
    crossing = np.searchsorted(edges, b, "left") - np.searchsorted(edges, a, "right") > 0  # a < edge < b
    if crossing.any():
        i = int(np.argmax(crossing))
        edge = edges[(edges > a[i]) & (edges < b[i])][0]
        raise _mismatch(f"token {text[a[i]:b[i]]!r} at characters {a[i]}-{b[i]} crosses the loss boundary at {edge}")
    k = np.clip(np.searchsorted(starts, a, "right") - 1, 0, None)
    inside = (a >= starts[k]) & np.where(a < b, b <= ends[k], a < ends[k])
    covered = _ranges_mask(a[inside], b[inside], len(text))
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    missing = _ranges_mask(starts, ends, len(text)) & ~covered & ~np.isin(codes, _WHITESPACE)
    if missing.any():
        p = int(np.argmax(missing))
        raise _mismatch(f"character {p} of an answer ({text[p:p + 40]!r}) has no token")
    return inside


def label_tokens(rendered: Rendered, encoded: list[tuple[list[int], list[tuple[int, int]]]],
                 bos: int | None) -> tuple[list[int], list[int]]:
    """(input ids, labels) of a rendered text whose chunks `encoded` gives (see `encode_chunks`)."""
    text, spans = rendered.text, rendered.loss_spans
    chunks = split_chunks(text)
    for k in range(len(chunks) - 1):
        at = chunks[k + 1][0] - len(IMAGE_TOKEN)
        if any(s <= at < e for s, e in spans):
            raise _mismatch(f"an image placeholder at character {at} lies inside an answer")
    count = sum(len(offs) for _, offs in encoded)
    flat = np.fromiter(itertools.chain.from_iterable(itertools.chain.from_iterable(o for _, o in encoded)),
                       dtype=np.int64, count=2 * count).reshape(-1, 2)
    flat += np.repeat([start for start, _ in chunks], [len(offs) for _, offs in encoded])[:, None]
    text_ids = np.fromiter(itertools.chain.from_iterable(i for i, _ in encoded), dtype=np.int64, count=count)
    text_labels = np.where(_loss_mask(text, flat, spans), text_ids, IGNORE_INDEX).tolist()
    ids, labels = ([bos], [IGNORE_INDEX]) if bos is not None else ([], [])
    at = 0
    for k, (chunk_ids, _) in enumerate(encoded):
        if k:
            ids.append(IMAGE_TOKEN_INDEX)
            labels.append(IGNORE_INDEX)
        ids += chunk_ids
        labels += text_labels[at:at + len(chunk_ids)]
        at += len(chunk_ids)
    return ids, labels


def fit_length(ids: list[int], labels: list[int], max_length: int, image_tokens: int) -> Tokenized:
    """Cut text (never an image) so that the expanded length is at most `max_length`; refuse what cannot fit."""
    images = [i for i, t in enumerate(ids) if t == IMAGE_TOKEN_INDEX] if IMAGE_TOKEN_INDEX in ids else []
    extra = len(images) * (image_tokens - 1)
    truncated = len(ids) + extra > max_length
    if truncated:
        cut = max_length - extra
        if images and images[-1] >= cut:
            raise BadSampleError("image_truncated", f"{len(images) * image_tokens} image tokens at position "
                                 f"{images[-1]} do not fit in llm.max_length={max_length}")
        ids, labels = ids[:cut], labels[:cut]
    if labels.count(IGNORE_INDEX) == len(labels):
        raise BadSampleError("no_target", "no answer token left" + (f" within llm.max_length={max_length}"
                                                                    if truncated else ""))
    return Tokenized(ids, labels, truncated)


def tokenize_conversation(tokenizer, template: ConversationTemplate, turns: list[Turn], max_length: int,
                          image_tokens: int) -> Tokenized:
    """Render, tokenise once, label by offsets, fit to `max_length` (raises `BadSampleError`)."""
    rendered = template.render(turns)
    encoded = encode_chunks(tokenizer, [c for _, c in split_chunks(rendered.text)])
    ids, labels = label_tokens(rendered, encoded, tokenizer.bos_token_id)
    return fit_length(ids, labels, max_length, image_tokens)


def plain_caption_tokens(tokenizer, caption: str, max_caption_tokens: int) -> Tokenized:
    """Stage 1: `[BOS, IMAGE] + tokens(caption + "\\n")`, at most `max_caption_tokens` caption tokens
    (the image counted as one position here), labels on the caption."""
    turns = [Turn("human", IMAGE_TOKEN), Turn("gpt", caption)]
    prefix = 2 if tokenizer.bos_token_id is not None else 1
    return tokenize_conversation(tokenizer, get_template("plain"), turns, max_caption_tokens + prefix, 1)
