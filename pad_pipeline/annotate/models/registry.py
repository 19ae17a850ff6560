"""Names -> builders for taggers, detectors and segmenters (plain dicts, lazy imports).

A builder takes `(section_config, models_config, device)` and returns a loaded wrapper. Modules are
imported only when their name is chosen, so RAM's code is not loaded for a CLIP run and vice versa.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

import torch

from pad_pipeline.core.errors import ConfigError

# name -> "module:function"; the function is `build(section, models_config, device)`.
TAGGERS: dict[str, str] = {
    "clip": "pad_pipeline.annotate.models.clip_tagger:build_clip_tagger",
    "ram": "pad_pipeline.annotate.models.ram.tagger:build_ram_tagger",
    "ram_plus": "pad_pipeline.annotate.models.ram.tagger:build_ram_plus_tagger",
}
DETECTORS: dict[str, str] = {
    "grounding_dino": "pad_pipeline.annotate.models.grounding_dino:build_grounding_dino",
}
SEGMENTERS: dict[str, str] = {
    "sam": "pad_pipeline.annotate.models.sam:build_sam",
}

_REGISTRIES = {"tagger": TAGGERS, "detector": DETECTORS, "segmenter": SEGMENTERS}


def get_builder(role: str, name: str) -> Callable[..., Any]:
    """Look up the builder of `name` for `role`; the error lists the valid names."""
    registry = _REGISTRIES[role]
    if name not in registry:
        raise ConfigError(f"field 'models.{role}.kind': {name!r} is not supported; "
                          f"valid: {', '.join(sorted(registry))}")
    module_name, func_name = registry[name].split(":")
    return getattr(importlib.import_module(module_name), func_name)


def build_model(role: str, section: Any, models_config: Any, device: torch.device) -> Any:
    return get_builder(role, section.kind)(section, models_config, device)
