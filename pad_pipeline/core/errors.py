"""User-facing errors: one line that names the file, field or sample and what to do.

The CLI prints `PadError` messages without a traceback and exits non-zero; anything else is a bug.
"""


class PadError(Exception):
    """An error the user can act on (bad manifest, bad path, refused resume...)."""


class ConfigError(PadError):
    """A manifest or override that does not fit its schema."""
