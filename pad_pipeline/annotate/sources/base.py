"""What a source yields, and how shard tasks fetch the bytes behind it."""

from __future__ import annotations

import tarfile
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

import fsspec

TAR_PREFIX = "tar+"


@dataclass(frozen=True)
class SourceItem:
    """One input image. `location` is a path/URL, or `tar+URL#member` for a member of a tar."""

    image_id: str
    caption: str
    location: str

    def as_dict(self) -> dict[str, str]:
        return {"image_id": self.image_id, "caption": self.caption, "location": self.location}


def tar_location(tar_url: str, member: str) -> str:
    return f"{TAR_PREFIX}{tar_url}#{member}"


def fetch_bytes(locations: Iterable[str]) -> dict[str, bytes | Exception]:
    """Bytes of each location (or the exception that reading it raised); each tar is opened once."""
    out: dict[str, bytes | Exception] = {}
    by_tar: dict[str, set[str]] = defaultdict(set)
    for loc in locations:
        if loc.startswith(TAR_PREFIX):
            url, _, member = loc[len(TAR_PREFIX):].rpartition("#")
            by_tar[url].add(member)
            continue
        try:
            with fsspec.open(loc, "rb") as f:
                out[loc] = f.read()
        except Exception as e:  # missing file, permission, network: recorded per image
            out[loc] = e
    for url, members in by_tar.items():
        try:
            with fsspec.open(url, "rb") as f, tarfile.open(fileobj=f, mode="r:*") as tar:
                for m in tar:
                    if m.name in members and m.isfile():
                        out[tar_location(url, m.name)] = tar.extractfile(m).read()  # type: ignore[union-attr]
        except Exception as e:
            for m in members:
                out.setdefault(tar_location(url, m), e)
        for m in members:
            out.setdefault(tar_location(url, m), FileNotFoundError(f"{m} not in {url}"))
    return out


def probe_locations(items: list[SourceItem], count: int = 5) -> tuple[int, str]:
    """Read up to `count` spread-out items: (how many were readable, the first read error)."""
    if not items:
        return 0, ""
    step = max(1, len(items) // count)
    chosen = items[::step][:count]
    fetched = fetch_bytes(it.location for it in chosen)
    errors = [v for v in fetched.values() if isinstance(v, Exception)]
    first = f"{type(errors[0]).__name__}: {errors[0]}"[:200] if errors else ""
    return len(fetched) - len(errors), first
