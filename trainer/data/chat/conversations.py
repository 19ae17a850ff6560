"""The LLaVA instruction-tuning format (`llava_v1_5_mix665k.json`) as typed records, checked entry by entry.

An entry is `{"id", "image"?, "conversations": [{"from": "human"|"gpt", "value": str}, ...]}`: multi-turn,
text-only when it has no `image`, the image as `<image>` in a human turn, its path relative to the image folder
(coco/, gqa/, ocr_vqa/, textvqa/, vg/). `parse_entry(entry, index)` returns a `Conversation` or a
`BadSample` with one of `REASONS` (never raises), so one bad entry is a named error or a counted skip, not a
crash or a silent zero-loss sample. `modality_length` is LLaVA's length for `group_by_modality_length`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trainer.constants import IMAGE_TOKEN
from trainer.data.chat.templates import ROLES, Turn

REASONS = {
    "not_an_object": "the entry is not a JSON object",
    "empty_conversation": "no conversations, or not a list",
    "bad_turn": "a turn is not {from: human|gpt, value: string}",
    "not_alternating": "turns must alternate human, gpt, ... and end with gpt",
    "empty_answer": "a gpt turn is empty (it would carry no loss)",
    "image_token_count": "the number of <image> in human turns does not match the entry's images (0 or 1)",
    "control_text": "a turn contains a control string of the template (e.g. </s>)",
    "missing_image": "the image file does not exist under data.image_folder",
    "image_decode": "the image file does not decode",
    "tokenization_mismatch": "the tokens do not line up with the template's loss spans",
    "image_truncated": "the image tokens do not fit in llm.max_length",
    "no_target": "no answer token is left to train on",
}


@dataclass(frozen=True)
class Conversation:
    id: str
    image: str | None
    turns: list[Turn]


@dataclass(frozen=True)
class BadSample:
    id: str
    reason: str   # a key of REASONS
    detail: str

    def line(self) -> str:
        return f"{self.id}\t{self.reason}\t{self.detail}"


def entry_id(entry: Any, index: int) -> str:
    """The entry's `id`, else `#index` (its position in the file)."""
    if isinstance(entry, dict) and entry.get("id") not in (None, ""):
        return str(entry["id"])
    return f"#{index}"


def _turns(sid: str, raw: Any) -> list[Turn] | BadSample:
    if not isinstance(raw, list) or not raw:
        return BadSample(sid, "empty_conversation", "conversations is missing, empty or not a list")
    turns = []
    for k, t in enumerate(raw):
        if not isinstance(t, dict) or t.get("from") not in ROLES or not isinstance(t.get("value"), str):
            return BadSample(sid, "bad_turn", f"turn {k} is {str(t)[:60]!r}")
        turns.append(Turn(t["from"], t["value"]))
    return turns


def _order_problem(sid: str, turns: list[Turn]) -> BadSample | None:
    for k, turn in enumerate(turns):
        if turn.role != ROLES[k % 2]:
            return BadSample(sid, "not_alternating", f"turn {k} is from {turn.role}, expected {ROLES[k % 2]}")
    if turns[-1].role != "gpt":
        return BadSample(sid, "not_alternating", f"the last turn ({len(turns) - 1}) is from human, not answered")
    empty = [k for k, t in enumerate(turns) if t.role == "gpt" and not t.value.strip()]
    if empty:
        return BadSample(sid, "empty_answer", f"gpt turn {empty[0]} is empty")
    return None


def _image_problem(sid: str, image: Any, turns: list[Turn]) -> BadSample | None:
    if image is not None and not (isinstance(image, str) and image):
        return BadSample(sid, "image_token_count", f"image must be one relative path, got {str(image)[:60]!r}")
    in_answers = [k for k, t in enumerate(turns) if t.role == "gpt" and IMAGE_TOKEN in t.value]
    if in_answers:
        return BadSample(sid, "image_token_count", f"<image> in gpt turn {in_answers[0]}")
    count = sum(t.value.count(IMAGE_TOKEN) for t in turns)
    if count != (1 if image else 0):
        return BadSample(sid, "image_token_count", f"{count} <image> in the turns, {1 if image else 0} image")
    return None


def parse_entry(entry: Any, index: int, control: tuple[str, ...] = ()) -> Conversation | BadSample:
    """One JSON entry -> a checked `Conversation`, or the first problem found (`control`: the template's
    control strings, which no turn may contain)."""
    sid = entry_id(entry, index)
    if not isinstance(entry, dict):
        return BadSample(sid, "not_an_object", f"got {type(entry).__name__}")
    turns = _turns(sid, entry.get("conversations"))
    if isinstance(turns, BadSample):
        return turns
    image = entry.get("image")
    problem = _order_problem(sid, turns) or _image_problem(sid, image, turns)
    if problem:
        return problem
    for k, t in enumerate(turns):
        hit = next((c for c in control if c in t.value), None)
        if hit:
            return BadSample(sid, "control_text", f"turn {k} contains {hit!r}")
    return Conversation(sid, image, turns)


def modality_length(conversation: Conversation) -> int:
    """LLaVA's: words over all turns, positive for image entries and negative for text-only ones."""
    words = sum(len(t.value.split()) for t in conversation.turns)
    return words if conversation.image else -words
