"""Load a pickle that may hold only plain data (dicts, lists, tuples, strings, numbers, booleans, None).

The `refer` annotations (`refs(unc).p`, `refs(umd).p`) are protocol-2 pickles of plain Python data, some
written by Python 2. Unpickling runs whatever callables a file names, so this loader refuses every global
(and persistent id) before it is resolved: such a file is rejected with a PadError naming it, and nothing in
it runs. Python 2 `str` values arrive as bytes and are decoded here (UTF-8, else Latin-1), dict keys too,
so callers see `str` throughout.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from pad_pipeline.core.errors import PadError


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"it names the global {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("it holds a persistent id")


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _plain(value: Any, path: Path) -> Any:
    """`value` with bytes decoded to str; a PadError for any type outside plain data."""
    if isinstance(value, bytes):
        return _text(value)
    if value is None or isinstance(value, (str, int, float)):  # bool is an int
        return value
    if isinstance(value, dict):
        return {_plain(k, path): _plain(v, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, path) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v, path) for v in value)
    raise PadError(f"{path}: holds a {type(value).__name__}, not plain data; refusing it: give the original "
                   "refer annotation file")


def load_plain_pickle(path: Path) -> Any:
    """The plain data pickled in `path`; a PadError naming the file if it holds anything else."""
    with open(path, "rb") as f:
        try:
            data = _PlainUnpickler(f, encoding="bytes").load()
        except Exception as e:  # a malformed pickle raises many kinds; all mean the same to the user
            raise PadError(f"{path}: not a pickle of plain data ({type(e).__name__}: {e}); refusing it: give the "
                           "original refer annotation file") from None
    return _plain(data, path)
