"""Strict loading of the official RAM / RAM++ checkpoints (`ram_swin_large_14m.pth`, `ram_plus_...`).

The official files hold `{"model": state_dict}` in the layout of the recognize-anything package. They
are read with `torch.load(..., weights_only=True)` (or safetensors for a converted file), renamed to
our module names by the explicit `KEY_MAP`, and loaded with `load_state_dict(strict=True)`. Only the
keys named in `SKIPPED` are dropped (RAM's caption branch, modules the official head deletes, and the
buffers our modules rebuild); any other missing, unexpected or mis-shaped key is a `PadError` that
lists them in the checkpoint's own names, so a wrong file never loads silently.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import re
from dataclasses import dataclass
from typing import Mapping

import fsspec
import torch
from safetensors.torch import load as load_safetensors
from torch import nn

from pad_pipeline.core.errors import PadError

# (official prefix, our prefix): `{i}` is a stage/layer number. A name ending in "." maps a prefix (the
# rest of the key is kept: Swin's block internals share the official names); otherwise the key exactly.
KEY_MAP: tuple[tuple[str, str], ...] = (
    ("visual_encoder.layers.{i}.", "image_encoder.stages.{i}."),
    ("visual_encoder.", "image_encoder."),
    ("image_proj.", "image_proj."),
    ("label_embed", "label_embed"),
    ("reweight_scale", "reweight_scale"),
    ("wordvec_proj.", "label_proj."),
    ("tagging_head.encoder.layer.{i}.crossattention.self.", "tagging_head.layers.{i}.cross_attn."),
    ("tagging_head.encoder.layer.{i}.crossattention.output.dense.",
     "tagging_head.layers.{i}.cross_attn.out."),
    ("tagging_head.encoder.layer.{i}.crossattention.output.LayerNorm.", "tagging_head.layers.{i}.norm1."),
    ("tagging_head.encoder.layer.{i}.intermediate.dense.", "tagging_head.layers.{i}.ffn.fc1."),
    ("tagging_head.encoder.layer.{i}.output.dense.", "tagging_head.layers.{i}.ffn.fc2."),
    ("tagging_head.encoder.layer.{i}.output.LayerNorm.", "tagging_head.layers.{i}.norm2."),
    ("fc.", "classifier."),
)

# Official keys dropped on purpose (pattern, why). Nothing else is ever ignored.
SKIPPED: tuple[tuple[str, str], ...] = (
    (r"^(tag_encoder|text_encoder|text_decoder)\.", "RAM's caption branch (tag encoder, text decoder)"),
    (r"^tagging_head\.embeddings\.", "word embeddings the official tagging head deletes"),
    (r"^tagging_head\.encoder\.layer\.\d+\.attention\.", "self-attention the official tagging head deletes"),
    (r"^visual_encoder\..*\.relative_position_index$", "Swin buffer rebuilt at construction"),
    (r"^visual_encoder\..*\.attn_mask$", "Swin buffer rebuilt at construction"),
)
_SKIPPED = [re.compile(p) for p, _ in SKIPPED]

# Older releases name the tagging head `vision_multi`; the official loader renames it the same way.
_LEGACY_PREFIXES = (("vision_multi.", "tagging_head."),)
_LISTED = 12


def _compile(template: str) -> re.Pattern[str]:
    body = re.escape(template).replace(re.escape("{i}"), r"(?P<i>\d+)")
    return re.compile(body if template.endswith(".") else body + "$")


def _rules(reverse: bool) -> list[tuple[re.Pattern[str], str]]:
    pairs = [(ours, official) if reverse else (official, ours) for official, ours in KEY_MAP]
    pairs.sort(key=lambda p: len(p[0]), reverse=True)  # the most specific prefix wins
    return [(_compile(src), dst) for src, dst in pairs]


_TO_OURS, _TO_OFFICIAL = _rules(reverse=False), _rules(reverse=True)


def _rename(key: str, rules: list[tuple[re.Pattern[str], str]]) -> str | None:
    for pattern, target in rules:
        m = pattern.match(key)
        if m:
            head = target.replace("{i}", m.group("i")) if "{i}" in target else target
            return head + key[m.end():]
    return None


def _canonical(key: str) -> str:
    for old, new in _LEGACY_PREFIXES:
        if key.startswith(old):
            return new + key[len(old):]
    return key


def official_to_ours(key: str) -> str | None:
    """Our parameter name for an official checkpoint key; None when skipped or KEY_MAP has no rule."""
    key = _canonical(key)
    return None if is_skipped(key) else _rename(key, _TO_OURS)


def ours_to_official(key: str) -> str:
    """The official checkpoint key of one of our parameter names (the inverse of `official_to_ours`)."""
    name = _rename(key, _TO_OFFICIAL)
    if name is None:
        raise KeyError(f"no official name for {key!r}")
    return name


def is_skipped(key: str) -> bool:
    """Whether an official key is one of the `SKIPPED` ones (checked before any renaming)."""
    return any(p.search(_canonical(key)) for p in _SKIPPED)


def to_official_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state dict in the official key layout (what `torch.save({"model": ...})` of RAM would hold)."""
    return {ours_to_official(k): v for k, v in state.items()}


def _listing(keys: list[str]) -> str:
    more = f" (and {len(keys) - _LISTED} more)" if len(keys) > _LISTED else ""
    return ", ".join(keys[:_LISTED]) + more


def _hint(missing: list[str], unexpected: list[str]) -> str:
    if "reweight_scale" in missing:
        return " (a RAM checkpoint? use models.tagger.kind=ram)"
    if "reweight_scale" in unexpected:
        return " (a RAM++ checkpoint? use models.tagger.kind=ram_plus)"
    return ""


@dataclass
class LoadReport:
    """What a strict load did: how many tensors it loaded, and the official keys dropped by `SKIPPED`."""

    loaded: int
    skipped: list[str]

    def summary(self) -> dict[str, int]:
        """The counts that go into the tagger's provenance (the full key list would swamp a record)."""
        return {"loaded_keys": self.loaded, "skipped_keys": len(self.skipped)}


def load_official_state_dict(model: nn.Module, official: Mapping[str, torch.Tensor],
                             source: str) -> LoadReport:
    """Rename `official` by KEY_MAP and load it into `model` strictly; a mismatch is a PadError."""
    renamed: dict[str, str] = {}  # ours -> official
    skipped: list[str] = []
    unexpected: list[str] = []
    for key in official:
        ours = official_to_ours(key)
        if is_skipped(key):
            skipped.append(key)
        elif ours is not None and ours not in renamed:
            renamed[ours] = key
        else:  # no rule, or a second key for the same parameter (e.g. both a legacy and a current name)
            unexpected.append(key)
    expected = model.state_dict()
    unexpected += [renamed.pop(k) for k in list(renamed) if k not in expected]
    missing = [ours_to_official(k) for k in expected if k not in renamed]
    mismatched = [f"{renamed[k]} {tuple(official[renamed[k]].shape)} != {tuple(expected[k].shape)}"
                  for k in renamed if official[renamed[k]].shape != expected[k].shape]
    found = (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", mismatched))
    problems = [f"{label}: {_listing(sorted(keys))}" for label, keys in found if keys]
    if problems:
        raise PadError(f"{source}: checkpoint does not fit the {type(model).__name__} built for this config; "
                       + "; ".join(problems) + _hint(missing, unexpected))
    model.load_state_dict({ours: official[key] for ours, key in renamed.items()}, strict=True)
    return LoadReport(loaded=len(renamed), skipped=sorted(skipped))


def read_official_checkpoint(url: str) -> tuple[dict[str, torch.Tensor], str]:
    """Read a .pth (weights_only) or .safetensors file from a path/fsspec URL -> (state dict, sha256)."""
    try:
        with fsspec.open(url, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise PadError(f"field 'models.tagger.checkpoint': {url} not found (see the README for where to "
                       f"download the RAM/RAM++ checkpoints)") from None
    except OSError as exc:
        raise PadError(f"field 'models.tagger.checkpoint': cannot read {url} ({exc})") from None
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        if url.endswith(".safetensors"):
            obj: object = load_safetensors(data)
        else:
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise PadError(f"field 'models.tagger.checkpoint': {url} is not a weights-only torch or safetensors "
                       f"checkpoint ({first})") from None
    state = obj.get("model", obj) if isinstance(obj, dict) else obj
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PadError(f"field 'models.tagger.checkpoint': {url} holds no state dict of tensors "
                       f"(expected {{'model': state_dict}} or a state dict)")
    return state, sha256
