"""A checkpoint file as a local path that can be memory-mapped, and its sha256, without reading it whole.

`checkpoint.read_official_checkpoint` maps the released RAM/RAM++ files (3 GB with optimizer state)
instead of reading them into memory. Mapping needs a local file: a local path (or `file://` URL) is
used as it is; any other fsspec URL is streamed to a temporary local file first, removed on exit (on
POSIX a mapping outlives the removal of its file). The hash is computed in fixed blocks, so neither
step ever holds more than one block of the file in memory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import PurePosixPath
from typing import Iterator

import fsspec
from fsspec.implementations.local import LocalFileSystem

from pad_pipeline.core.errors import PadError

_BLOCK = 16 * 2**20


def sha256_of(path: str) -> str:
    """Hex sha256 of a local file, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def _not_readable(url: str, field: str, exc: OSError) -> PadError:
    if isinstance(exc, FileNotFoundError):
        return PadError(f"field '{field}': {url} not found (see the README for where to download the "
                        f"RAM/RAM++ checkpoints)")
    return PadError(f"field '{field}': cannot read {url} ({exc})")


@contextmanager
def local_copy(url: str, field: str) -> Iterator[str]:
    """A local path holding the bytes of `url`; a missing or unreadable file is a PadError naming `field`."""
    tmp = None
    try:
        fs, path = fsspec.core.url_to_fs(url)
        if isinstance(fs, LocalFileSystem):
            with open(path, "rb"):  # not found, a folder, no permission: say so before any work
                pass
        else:
            fd, tmp = tempfile.mkstemp(prefix="pad-checkpoint-", suffix=PurePosixPath(path).suffix)
            with fs.open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
                shutil.copyfileobj(src, dst, _BLOCK)
            path = tmp
    except OSError as exc:
        if tmp is not None:
            os.unlink(tmp)
        raise _not_readable(url, field, exc) from None
    try:
        yield path
    finally:
        if tmp is not None:
            os.unlink(tmp)
