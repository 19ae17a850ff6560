"""The one configuration system: YAML manifests -> pydantic models, with dotted overrides and presets.

Every command has a schema (a `ConfigModel` subclass). `load_config(path, overrides, Schema)` reads the
manifest, applies `--set a.b=value` overrides (values parsed as YAML scalars), refuses renamed fields
(`Schema.RENAMED`), fills presets (the `Schema.apply_presets` hook), validates, and raises a one-line
`ConfigError` naming the file and field on any mistake. `get_dotted` / `set_dotted` are the one walk
over "a.b.c" paths. `config_hash` is the identity of a resolved config (written into plans and shard
records); `dump_resolved` writes it beside an output.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar, Iterable, Mapping, TypeVar

import fsspec
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from pad_pipeline.core.errors import ConfigError

T = TypeVar("T", bound="ConfigModel")


class ConfigModel(BaseModel):
    """Base of every schema: unknown keys are errors (a typo never silently falls back to a default)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    # Old dotted field -> its new name: a manifest still using the old one gets an error naming the new.
    RENAMED: ClassVar[dict[str, str]] = {}

    @classmethod
    def apply_presets(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Hook: fill a raw manifest from named presets before it is validated (no presets here)."""
        return data


def _keys(dotted: str) -> list[str]:
    keys = [k for k in dotted.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"empty field name {dotted!r}")
    return keys


def get_dotted(data: Mapping[str, Any], dotted: str) -> Any:
    """The value at `a.b.c` in nested mappings; `KeyError(dotted)` when some level is absent."""
    node: Any = data
    for k in _keys(dotted):
        if not isinstance(node, Mapping) or k not in node:
            raise KeyError(dotted)
        node = node[k]
    return node


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `a.b.c` in nested dicts, creating missing levels; a level that is not a mapping is an error."""
    keys = _keys(dotted)
    node = data
    for depth, k in enumerate(keys[:-1], start=1):
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{'.'.join(keys[:depth])} is not a mapping")
    node[keys[-1]] = value


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping from a local path or fsspec URL."""
    try:
        with fsspec.open(str(path), "r") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: manifest not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a manifest must be a YAML mapping, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of `data` with each `a.b.c=value` applied; the value is parsed as YAML."""
    out = json.loads(json.dumps(data))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key.sub=value")
        dotted, raw = item.split("=", 1)
        try:
            set_dotted(out, dotted, yaml.safe_load(raw) if raw.strip() else "")
        except ConfigError as e:
            raise ConfigError(f"override {item!r}: {e}") from None
    return out


def check_renamed(data: Mapping[str, Any], renamed: Mapping[str, str]) -> None:
    """A one-line error for the first old field name still present in `data`."""
    for old, new in renamed.items():
        try:
            get_dotted(data, old)
        except KeyError:
            continue
        raise ConfigError(f"field '{old}' was renamed to '{new}'")


def _format_validation_error(source: str, err: ValidationError) -> str:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "<root>"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{source}: field '{field}': {first['msg']}{more}"


def build_config(data: dict[str, Any], schema: type[T], source: str = "config") -> T:
    """Validate a plain mapping against `schema` (renamed fields, presets, then fields), with a one-line
    error naming `source` and the field."""
    try:
        check_renamed(data, schema.RENAMED)
        return schema.model_validate(schema.apply_presets(data))
    except ValidationError as e:
        raise ConfigError(_format_validation_error(source, e)) from None
    except ConfigError as e:  # from a hook, or a registry check that pydantic lets through unwrapped
        raise ConfigError(f"{source}: {e}") from None


def load_config(path: str | Path, overrides: Iterable[str], schema: type[T]) -> T:
    """Read a manifest, apply dotted overrides and validate it against `schema`."""
    data = apply_overrides(read_yaml(path), overrides)
    return build_config(data, schema, source=str(path))


def config_dict(cfg: BaseModel) -> dict[str, Any]:
    """The resolved config as plain JSON-able data."""
    return cfg.model_dump(mode="json")


def config_hash(cfg: BaseModel, exclude: set[str] | dict[str, Any] | None = None) -> str:
    """A short, stable identity of a resolved config (sorted-key JSON, sha256, 16 hex digits)."""
    data = cfg.model_dump(mode="json", exclude=exclude)
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def dump_resolved(cfg: BaseModel, url: str) -> None:
    """Write the resolved config as YAML (beside an output, so a run can be reproduced)."""
    with fsspec.open(url, "w") as f:
        yaml.safe_dump(config_dict(cfg), f, sort_keys=False)
