"""Strict loading of the official RAM / RAM++ checkpoints (`ram_swin_large_14m.pth`, `ram_plus_...`).

The official files hold `{"model": state_dict}` (and, in the released RAM++ file, optimizer state) in
the layout of the recognize-anything package. They are memory-mapped with `torch.load(..., mmap=True,
weights_only=True)` (or read as safetensors), so the optimizer state is never read and peak host memory
is about twice the model, not twice the file; renamed to our module names by the explicit `KEY_MAP`;
and loaded with `load_state_dict(strict=True)`. Only the keys named in `SKIPPED` are dropped (RAM's
caption branch, modules the official head deletes, the buffers our modules rebuild, the training-only
`logit_scale`), and only the parameters named in `DEFAULTED` may be absent (RAM++'s `reweight_scale`,
which then keeps the official initial value, as the official strict=False loader leaves it; the load
report says so). Any other missing, unexpected or mis-shaped key is a `PadError` that lists them in the
checkpoint's own names, and says which tagger kind the file is for when it is plainly the other one.
"""

from __future__ import annotations

import logging
import pickle
import re
from dataclasses import dataclass, field
from typing import Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file as load_safetensors_file
from torch import nn

from pad_pipeline.annotate.models.ram.checkpoint_file import local_copy, sha256_of
from pad_pipeline.annotate.models.ram.model import INITIAL_REWEIGHT_SCALE, RamConfig
from pad_pipeline.core.errors import PadError

log = logging.getLogger(__name__)

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
    (r"^logit_scale$", "a training-only temperature of the released RAM++ file (the official loader drops it)"),
)

# Parameters a released file may lack: official key -> (value the model keeps, how the report writes it).
DEFAULTED: dict[str, tuple[float, str]] = {
    "reweight_scale": (INITIAL_REWEIGHT_SCALE, "log(1/0.07)"),
}
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


def _hint(model: nn.Module, official: Mapping[str, torch.Tensor]) -> str:
    """Which tagger kind a refused file is for, judged by its label table, when that is plainly the other."""
    cfg, table = getattr(model, "cfg", None), official.get("label_embed")
    if not isinstance(cfg, RamConfig) or table is None or table.ndim != 2:
        return ""
    rows, tags = int(table.shape[0]), cfg.num_classes
    if cfg.is_plus and rows == tags:  # one embedding per tag
        return " (a RAM checkpoint? use models.tagger.kind=ram)"
    if not cfg.is_plus and ("reweight_scale" in official or (rows > tags and rows % tags == 0)):
        return " (a RAM++ checkpoint? use models.tagger.kind=ram_plus)"
    if rows != tags * max(1, cfg.descriptions_per_class):
        return f" (its label_embed has {rows} rows for {tags} tags: use the tag list of this checkpoint)"
    return ""


@dataclass
class LoadReport:
    """What a strict load did: tensors loaded, official keys dropped by `SKIPPED`, and `DEFAULTED` ones
    the file lacked (official key -> value kept)."""

    loaded: int
    skipped: list[str]
    defaulted: dict[str, float] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """One line per defaulted parameter (also logged as a warning when the file is loaded)."""
        return [f"{key} not in the file: kept the official initial value {DEFAULTED[key][1]} = {value:.6f}"
                for key, value in self.defaulted.items()]

    def summary(self) -> dict[str, int | list[str]]:
        """What goes into the tagger's provenance (the full skipped list would swamp a record)."""
        return {"loaded_keys": self.loaded, "skipped_keys": len(self.skipped),
                "defaulted_keys": sorted(self.defaulted)}


def _sort_keys(model: nn.Module, official: Mapping[str, torch.Tensor]
               ) -> tuple[dict[str, str], list[str], list[str], list[str]]:
    """(ours -> official for the keys to load, skipped, unexpected, missing official names)."""
    renamed: dict[str, str] = {}
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
    return renamed, skipped, unexpected, missing


def load_official_state_dict(model: nn.Module, official: Mapping[str, torch.Tensor],
                             source: str) -> LoadReport:
    """Rename `official` by KEY_MAP and load it into `model` strictly; a mismatch is a PadError."""
    renamed, skipped, unexpected, missing = _sort_keys(model, official)
    defaulted = [key for key in missing if key in DEFAULTED]
    missing = [key for key in missing if key not in DEFAULTED]
    expected = model.state_dict()
    mismatched = [f"{renamed[k]} {tuple(official[renamed[k]].shape)} != {tuple(expected[k].shape)}"
                  for k in renamed if official[renamed[k]].shape != expected[k].shape]
    found = (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", mismatched))
    problems = [f"{label}: {_listing(sorted(keys))}" for label, keys in found if keys]
    if problems:
        raise PadError(f"{source}: checkpoint does not fit the {type(model).__name__} built for this config; "
                       + "; ".join(problems) + _hint(model, official))
    values = {ours: official[key] for ours, key in renamed.items()}
    for key in defaulted:
        ours = _rename(key, _TO_OURS) or key
        values[ours] = torch.full_like(expected[ours], DEFAULTED[key][0])
    model.load_state_dict(values, strict=True)
    report = LoadReport(loaded=len(renamed), skipped=sorted(skipped),
                        defaulted={key: DEFAULTED[key][0] for key in defaulted})
    for line in report.lines():
        log.warning("%s: %s", source, line)
    return report


def _torch_load(path: str) -> object:
    """Memory-mapped, weights only; a file in the legacy (pre-zip) format cannot be mapped and is read."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)


def read_official_checkpoint(url: str) -> tuple[dict[str, torch.Tensor], str]:
    """Map a .pth (weights only) or read a .safetensors file at a path/fsspec URL -> (state dict, sha256).

    The tensors of a .pth file stay backed by the file until they are copied into the model; whatever
    else it holds (optimizer state) is never read into memory. A remote file is first copied to a
    local temporary file, which is removed again once mapped.
    """
    with local_copy(url, "models.tagger.checkpoint") as path:
        sha256 = sha256_of(path)
        try:
            obj = load_safetensors_file(path) if url.endswith(".safetensors") else _torch_load(path)
        except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, OSError, SafetensorError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise PadError(f"field 'models.tagger.checkpoint': {url} is not a weights-only torch or "
                           f"safetensors checkpoint ({first})") from None
    state = obj.get("model", obj) if isinstance(obj, dict) else obj
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PadError(f"field 'models.tagger.checkpoint': {url} holds no state dict of tensors "
                       f"(expected {{'model': state_dict}} or a state dict)")
    return state, sha256
