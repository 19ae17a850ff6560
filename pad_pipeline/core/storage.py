"""Where a build lives: local folders and fsspec URLs (s3://, gs://, hf://) behind one small API.

Object stores have no atomic rename, so durability comes from ordering, not renames: a shard's tar and
index are written first and its record (the commit marker) last. On a local file system writes still go
through a temporary name and `os.replace`, so a crash never leaves a half-written file under a final name.
`create_exclusive` writes a file only when none exists under its name (the build's lease): a hard link of
a complete temporary file on local disks, `open(mode="xb")` (create-if-absent) on stores that offer it, else
write-then-read-back (see its docstring for what that fallback does not guarantee).
"""

from __future__ import annotations

import os
import posixpath
import uuid

import fsspec
from fsspec.implementations.local import LocalFileSystem


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec file system of `url` and the path inside it."""
    fs, path = fsspec.core.url_to_fs(url)
    return fs, path


def join(base: str, *parts: str) -> str:
    if "://" in base:
        return posixpath.join(base, *parts)
    return os.path.join(base, *parts)


def _durable_temp(path: str, data: bytes) -> str:
    """`data` written and fsynced under a fresh temporary name beside `path` (its folder made); the name."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return tmp


def write_bytes(url: str, data: bytes) -> None:
    """Write `data` under `url`; on local disks via a temporary name + rename (never half a file)."""
    fs, path = filesystem(url)
    if isinstance(fs, LocalFileSystem):
        tmp = _durable_temp(path, data)
        try:
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    else:
        fs.pipe_file(path, data)


def create_exclusive(url: str, data: bytes) -> bool:
    """Write `data` under `url` only if nothing is there; True when this call created it.

    Local disks: the complete data goes to a temporary name, then `os.link` gives it the final name, which
    fails when the name exists (atomic on POSIX file systems, NFS included). Object stores: `open("xb")`,
    a conditional create (If-None-Match on S3 and GCS in fsspec's s3fs/gcsfs; memory://). A store without it
    falls back to exists-check, write, read back: two writers racing inside the store's consistency window
    could both see their own bytes; the lease's heartbeat re-reads the file and the loser stops there.
    """
    fs, path = filesystem(url)
    if isinstance(fs, LocalFileSystem):
        tmp = _durable_temp(path, data)
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    try:
        with fs.open(path, "xb") as f:
            f.write(data)
        return bool(fs.cat_file(path) == data)  # a store whose "xb" is only a check still names one winner
    except FileExistsError:
        return False
    except (ValueError, NotImplementedError, TypeError):  # no conditional create on this store
        if fs.exists(path):
            return False
        fs.pipe_file(path, data)
        return bool(fs.cat_file(path) == data)


def read_bytes(url: str) -> bytes:
    fs, path = filesystem(url)
    return fs.cat_file(path)


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    return fs.exists(path)


def size(url: str) -> int:
    fs, path = filesystem(url)
    return int(fs.size(path))


def list_names(url: str, pattern: str) -> list[str]:
    """Base names of the files in folder `url` matching glob `pattern`, sorted."""
    fs, path = filesystem(url)
    if not fs.exists(path):
        return []
    return sorted(posixpath.basename(p) for p in fs.glob(posixpath.join(path.rstrip("/"), pattern)))


def list_sizes(url: str, pattern: str) -> dict[str, int]:
    """Base name -> size of the files in folder `url` matching glob `pattern`: one listing, no per-file calls."""
    fs, path = filesystem(url)
    if not fs.exists(path):
        return {}
    found = fs.glob(posixpath.join(path.rstrip("/"), pattern), detail=True)
    return {posixpath.basename(p.rstrip("/")): int(info.get("size") or 0) for p, info in found.items()
            if info.get("type") != "directory"}


def remove(url: str) -> None:
    fs, path = filesystem(url)
    if fs.exists(path):
        fs.rm_file(path)


def makedirs(url: str) -> None:
    fs, path = filesystem(url)
    fs.makedirs(path, exist_ok=True)
