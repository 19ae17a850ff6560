"""Whether a manifest's `stage2:` names a transformers Llava model rather than a `pad sft` run folder."""

from __future__ import annotations

import json
import os

HUB_PREFIX = "hub:"


def is_hf_llava(source: str) -> bool:
    """A hub id (`hub:ORG/NAME`) or a local transformers Llava folder (config.json says `model_type: llava`)."""
    if source.startswith(HUB_PREFIX):
        return True
    path = os.path.join(source, "config.json")
    if not os.path.isfile(path):
        return False
    with open(path) as f:
        return json.load(f).get("model_type") == "llava"
