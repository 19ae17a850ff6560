"""Existing WebDataset tars (img2dataset layout): `<key>.jpg` (or any format `image_dir` lists: png,
webp, bmp, gif, tif) + `<key>.txt` or `<key>.json` with a `caption`. A key that appears twice in a tar
keeps both images: the n-th image of a key is `NAME/key`, `NAME/key#2`, ... with that key's n-th
caption; nothing is dropped silently. A truncated or mislabelled tar is a one-line error. `source.path`
is a tar URL, a glob, or a brace pattern (`shards/{00000..00099}.tar`); `.tar.gz` / `.tgz` (any
compression tarfile reads) works too.

`list_items` reads each tar once, when the plan is made: member names and captions, and, for an
uncompressed tar, each image's byte range (`tar+URL#member@offset:size`), so a shard task later reads
only its images' bytes. A compressed tar cannot be read in ranges; its items keep `tar+URL#member` and
the plan keeps each such tar inside one shard, so it is decompressed by one shard task only.
`source_files` gives each tar's size and stamp from `fs.info` (no tar is opened): a resume compares
them with the ones stored beside the plan instead of listing the tars again.
"""

from __future__ import annotations

import json
import lzma
import posixpath
import tarfile
import zlib
from collections import defaultdict
from typing import IO, Any, Mapping

import braceexpand
import fsspec

from pad_pipeline.annotate.config import SourceConfig
from pad_pipeline.annotate.sources.base import IMAGE_EXTENSIONS, SourceItem, tar_location
from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.source_index import SourceFile

IMAGE_EXTS = tuple(ext.lstrip(".") for ext in IMAGE_EXTENSIONS)
# What reading a damaged or mislabelled tar raises (truncated gzip: EOFError; bad deflate data: zlib.error).
UNREADABLE_TAR = (FileNotFoundError, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)
COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")  # gzip, bzip2, xz
# The fields of `fs.info` that change when an object is rewritten, most specific first (s3/http ETag,
# gcs md5Hash/generation, local mtime, s3 LastModified, gcs updated, http Last-Modified).
STAMP_FIELDS = ("ETag", "etag", "md5Hash", "Content-MD5", "generation", "mtime", "LastModified",
                "last_modified", "updated", "Last-Modified")
LIST_FOLDER_FROM = 8  # with this many tars in one folder, one listing of it replaces their fs.info calls


def expand_urls(pattern: str) -> list[str]:
    urls: list[str] = []
    for p in braceexpand.braceexpand(pattern):
        if any(c in p for c in "*?["):
            fs, path = storage.filesystem(p)
            proto = p.split("://", 1)[0] + "://" if "://" in p else ""
            urls.extend(proto + m for m in sorted(fs.glob(path)))
        else:
            urls.append(p)
    return urls


def is_compressed(f: IO[bytes]) -> bool:
    """Whether the file `f` (at its start; left there) is gzip, bzip2 or xz compressed."""
    head = f.read(6)
    f.seek(0)
    return head.startswith(COMPRESSED_MAGIC)


def _caption(ext: str, data: bytes) -> str | None:
    text = data.decode("utf-8", "replace")
    if ext == "txt":
        return text.strip()
    try:
        return str(json.loads(text).get("caption", "")).strip()
    except (json.JSONDecodeError, AttributeError):
        return None


def _tar_items(url: str) -> list[SourceItem]:
    images: list[tuple[str, str]] = []  # (prefix, location), in tar order; a prefix may repeat
    captions: dict[str, dict[str, list[str | None]]] = {"txt": defaultdict(list), "json": defaultdict(list)}
    with fsspec.open(url, "rb") as f:
        ranged = not is_compressed(f)
        with tarfile.open(fileobj=f, mode="r:" if ranged else "r:*") as tar:
            for m in tar:
                if not m.isfile():
                    continue
                key, _, ext = posixpath.basename(m.name).partition(".")
                prefix, ext = posixpath.join(posixpath.dirname(m.name), key), ext.lower()
                if ext in IMAGE_EXTS:
                    exact = ranged and not m.issparse()
                    images.append((prefix, tar_location(url, m.name, m.offset_data if exact else None, m.size)))
                elif ext in ("txt", "json"):
                    captions[ext][prefix].append(_caption(ext, tar.extractfile(m).read()))  # type: ignore[union-attr]
    name = posixpath.basename(url).rsplit(".", 1)[0]
    seen: dict[str, int] = defaultdict(int)
    items = []
    for prefix, location in images:
        n = seen[prefix]
        seen[prefix] += 1
        image_id = f"{name}/{prefix}" if n == 0 else f"{name}/{prefix}#{n + 1}"
        items.append(SourceItem(image_id, _nth_caption(captions, prefix, n), location))
    return items


def _nth_caption(captions: dict[str, dict[str, list[str | None]]], prefix: str, n: int) -> str:
    """The caption of the n-th image of `prefix`: its n-th `.txt`, else its n-th readable `.json` caption."""
    for ext in ("txt", "json"):
        found = captions[ext].get(prefix, [])
        if n < len(found) and found[n] is not None:
            return found[n]  # type: ignore[return-value]
    return ""


def list_items(cfg: SourceConfig) -> list[SourceItem]:
    urls = expand_urls(cfg.path)
    if not urls:
        raise PadError(f"{cfg.path}: source.path matches no tar")
    items: list[SourceItem] = []
    for url in urls:
        try:
            items.extend(_tar_items(url))
        except UNREADABLE_TAR as e:
            detail = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            raise PadError(f"{url}: cannot read this source tar ({detail[:200]}); is it truncated or not a "
                           "tar?") from None
    return items


def file_stamp(info: Mapping[str, Any]) -> str | None:
    """`"field=value"` of the first `STAMP_FIELDS` entry `info` has; None when it has none."""
    for name in STAMP_FIELDS:
        if info.get(name) not in (None, ""):
            return f"{name}={info[name]}"
    return None


def _infos(urls: list[str]) -> dict[str, Mapping[str, Any]]:
    """`fs.info` of each URL; a folder holding many of them is listed once instead."""
    by_folder: dict[str, list[str]] = defaultdict(list)
    for url in urls:
        by_folder[url.rsplit("/", 1)[0]].append(url)
    infos: dict[str, Mapping[str, Any]] = {}
    for folder_urls in by_folder.values():
        fs, first = storage.filesystem(folder_urls[0])
        listed: dict[str, Mapping[str, Any]] = {}
        if len(folder_urls) >= LIST_FOLDER_FROM:
            listed = {posixpath.basename(str(e["name"]).rstrip("/")): e
                      for e in fs.ls(posixpath.dirname(first), detail=True)}
        for url in folder_urls:
            fs, path = storage.filesystem(url)
            infos[url] = listed.get(posixpath.basename(path)) or fs.info(path)
    return infos


def source_files(cfg: SourceConfig) -> list[SourceFile] | None:
    """Each tar's URL, size and stamp, from `fs.info` alone (no tar is opened); None when some tar cannot
    be described (missing, no permission, no match): the listing then reports it."""
    urls = expand_urls(cfg.path)
    try:
        infos = _infos(urls)
    except Exception:  # missing, no permission, network: the listing that follows says which
        return None
    files = []
    for url in urls:
        size = infos[url].get("size")
        files.append(SourceFile(url, int(size or 0), file_stamp(infos[url]) if size is not None else None))
    return files or None
