"""Existing WebDataset tars (img2dataset layout): `<key>.jpg` (or png/webp) + `<key>.txt` or
`<key>.json` with a `caption`. `source.path` is a tar URL, a glob, or a brace pattern
(`shards/{00000..00099}.tar`). Captions are read when the plan is made; images when a shard runs."""

from __future__ import annotations

import json
import posixpath
import tarfile

import braceexpand
import fsspec

from pad_pipeline.annotate.config import SourceConfig
from pad_pipeline.annotate.sources.base import SourceItem, tar_location
from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


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


def _tar_items(url: str) -> list[SourceItem]:
    groups: dict[str, dict[str, str]] = {}
    captions: dict[str, str] = {}
    with fsspec.open(url, "rb") as f, tarfile.open(fileobj=f, mode="r:*") as tar:
        for m in tar:
            if not m.isfile():
                continue
            base = posixpath.basename(m.name)
            key, _, ext = base.partition(".")
            prefix = posixpath.join(posixpath.dirname(m.name), key)
            ext = ext.lower()
            if ext in IMAGE_EXTS:
                groups.setdefault(prefix, {})["image"] = m.name
            elif ext in ("txt", "json"):
                data = tar.extractfile(m).read().decode("utf-8", "replace")  # type: ignore[union-attr]
                if ext == "txt":
                    captions[prefix] = data.strip()
                else:
                    try:
                        captions.setdefault(prefix, str(json.loads(data).get("caption", "")).strip())
                    except (json.JSONDecodeError, AttributeError):
                        pass
    name = posixpath.basename(url).rsplit(".", 1)[0]
    return [SourceItem(f"{name}/{prefix}", captions.get(prefix, ""), tar_location(url, g["image"]))
            for prefix, g in groups.items() if "image" in g]


def list_items(cfg: SourceConfig) -> list[SourceItem]:
    urls = expand_urls(cfg.path)
    if not urls:
        raise PadError(f"{cfg.path}: source.path matches no tar")
    items: list[SourceItem] = []
    for url in urls:
        try:
            items.extend(_tar_items(url))
        except (FileNotFoundError, tarfile.TarError) as e:
            raise PadError(f"{url}: cannot read this source tar ({e})") from None
    return items
