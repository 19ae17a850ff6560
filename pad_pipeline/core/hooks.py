"""Test hooks: fault injection for the fault-tolerance tests, out of the user's manifest schema.

`PAD_TEST_HOOKS` holds a JSON object read by the process that runs `pad annotate` (the driver), which
hands the values to its actors as arguments; nothing here reaches `pad annotate --help`, the JSON schema
or a build's `config.yaml`. Unset means no fault. Example:
`PAD_TEST_HOOKS='{"pause_before_commit_s": 30}' pad annotate m.yaml`.
"""

from __future__ import annotations

import json
import os

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pad_pipeline.core.errors import ConfigError

ENV = "PAD_TEST_HOOKS"


class Hooks(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kill_probability: float = Field(0.0, ge=0.0, le=1.0, description="annotator os._exit per batch")
    pause_before_commit_s: float = Field(0.0, ge=0.0, description="pause between a shard's tar and its record")
    pause_in_model_load_s: float = Field(0.0, ge=0.0, description="pause before an annotator's models load")


def read_hooks() -> Hooks:
    """The hooks `PAD_TEST_HOOKS` sets (none when unset); a malformed value is a one-line `ConfigError`."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return Hooks()
    try:
        return Hooks.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as e:
        raise ConfigError(f"{ENV}: {str(e).splitlines()[0]} (a JSON object of {', '.join(Hooks.model_fields)})"
                          ) from None
