"""The key layouts every consumer reads: a state-dict adapter, as torchtitan keeps one per foreign format.

transformers 5 names a `LlavaForConditionalGeneration` `model.language_model.*`, `lm_head.*`,
`model.vision_tower.*` (a CLIP tower without its `vision_model.` level) and `model.multi_modal_projector.*`.
The published llava-hf checkpoints (`llava-hf/llava-1.5-7b-hf`, written by transformers 4.3x) use
`language_model.model.*`, `language_model.lm_head.*`, `vision_tower.vision_model.*` and
`multi_modal_projector.*`: transformers 4.x loads only that layout (any other vision key is "newly
initialised", silently), and transformers 5, vLLM and lmms-eval load it too. So the exports are written in the
published layout (`to_published`); `from_published` is its inverse, used to compare what a loader built with
what was written. `clip_published` does the same for a lone `CLIPVisionModel` (LLaVA's `vision_tower/`).
"""

from __future__ import annotations

from typing import TypeVar

from pad_pipeline.core.errors import PadError

T = TypeVar("T")

CLIP_LEVEL = "vision_model."
# (transformers 5 prefix, published prefix); the vision tower also gains CLIP_LEVEL.
LLAVA_PREFIXES = (
    ("model.language_model.", "language_model.model."),
    ("lm_head.", "language_model.lm_head."),
    ("model.vision_tower.", "vision_tower."),
    ("model.multi_modal_projector.", "multi_modal_projector."),
)
PUBLISHED_VISION = "vision_tower."


def clip_published(state: dict[str, T]) -> dict[str, T]:
    """A `CLIPVisionModel` state (either layout) -> the `vision_model.*` keys transformers 4.x reads."""
    return {k if k.startswith(CLIP_LEVEL) else CLIP_LEVEL + k: v for k, v in state.items()}


def _renamed(key: str, pairs: tuple[tuple[str, str], ...], what: str) -> str:
    for old, new in pairs:
        if key.startswith(old):
            return new + key[len(old):]
    raise PadError(f"{what}: key {key!r} is in no Llava part ({', '.join(p for p, _ in pairs)})")


def to_published(state: dict[str, T]) -> dict[str, T]:
    """transformers-5 `LlavaForConditionalGeneration` keys -> the published llava-hf keys."""
    out = {}
    for key, value in state.items():
        name = _renamed(key, LLAVA_PREFIXES, "export-hf")
        if name.startswith(PUBLISHED_VISION) and not name.startswith(PUBLISHED_VISION + CLIP_LEVEL):
            name = PUBLISHED_VISION + CLIP_LEVEL + name[len(PUBLISHED_VISION):]
        out[name] = value
    return out


def from_published(state: dict[str, T]) -> dict[str, T]:
    """The published llava-hf keys -> transformers-5 keys (the inverse of `to_published`)."""
    back = tuple((new, old) for old, new in LLAVA_PREFIXES)
    out = {}
    for key, value in state.items():
        if key.startswith(PUBLISHED_VISION + CLIP_LEVEL):
            key = PUBLISHED_VISION + key[len(PUBLISHED_VISION + CLIP_LEVEL):]
        out[_renamed(key, back, "published llava-hf state")] = value
    return out
