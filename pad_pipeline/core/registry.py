"""The one registry idiom: a name -> a builder, imported only when that name is chosen.

Models, sources, projectors and threshold rules are each a `Registry` of `"module:function"` strings.
Config schemas type a registry-backed field `Annotated[str, REGISTRY.known(field)]` (one validator, written
once here) so while a manifest loads `check(name, field)` runs, so a misspelt `kind` is a one-line
`ConfigError` listing the valid names before any work starts; the code that builds the thing calls
`get(name)`. Because builders are strings, a registry module imports neither torch nor the builders'
modules, and checking a manifest stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping

from pydantic import AfterValidator

from pad_pipeline.core.errors import ConfigError


class Registry:
    """Names of one kind of thing (`what`, e.g. "detector") -> lazily imported builders."""

    def __init__(self, what: str, builders: Mapping[str, str]):
        for name, target in builders.items():
            if target.count(":") != 1:  # a malformed entry is a bug of ours; say so at import time
                raise ValueError(f"{what} {name!r}: builder {target!r} is not 'module:function'")
        self.what = what
        self._builders = dict(builders)

    def names(self) -> tuple[str, ...]:
        """The valid names, in registration order (the order the error lists them in)."""
        return tuple(self._builders)

    def __contains__(self, name: object) -> bool:
        return name in self._builders

    def _unknown(self, name: str) -> str:
        return f"{name!r} is not a known {self.what}; valid: {', '.join(self.names())}"

    def check(self, name: str, field: str) -> str:
        """`name` itself when it is registered, else a one-line `ConfigError` naming `field`."""
        if name not in self._builders:
            raise ConfigError(f"field '{field}': {self._unknown(name)}")
        return name

    def known(self, field: str) -> AfterValidator:
        """The validator of a config field naming one of these (`kind: Annotated[str, REG.known("a.kind")]`):
        the value itself when registered, else `check`'s one-line `ConfigError` naming `field`."""
        return AfterValidator(lambda name: self.check(name, field))

    def get(self, name: str) -> Callable[..., Any]:
        """Import and return the builder of `name`."""
        if name not in self._builders:
            raise ConfigError(self._unknown(name))
        module_name, attr = self._builders[name].split(":")
        return getattr(importlib.import_module(module_name), attr)
