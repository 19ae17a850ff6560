"""What a source yields, and how shard tasks fetch the bytes behind it.

A location is a path/URL, or a member of a tar: `tar+URL#member@offset:size` when the tar is
uncompressed (offset and size of the member's data, indexed when the plan was made: the shard task reads
just those bytes, adjacent members of one tar in one ranged read), or `tar+URL#member` for a compressed
tar, which is read from its start (plans made before byte ranges existed use this form for every tar
and stay readable).
"""

from __future__ import annotations

import os
import re
import stat
import tarfile
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

import fsspec
from fsspec.implementations.local import LocalFileSystem

from pad_pipeline.core import storage

TAR_PREFIX = "tar+"
# Every image format `image_dir` lists, and that tar members may be (webdataset sources).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
NOT_A_FILE = "not_a_file"


class InputRefused(Exception):
    """An input that is not read, with the named failure its shard records (`outside_root`, `not_a_file`)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
# Members of one tar whose data are at most MERGE_GAP bytes apart are read in one request (the gap is
# headers and caption members), up to MAX_READ bytes per request.
MERGE_GAP = 64 * 2**10
MAX_READ = 64 * 2**20
_RANGE = re.compile(r"^(?P<member>.+)@(?P<offset>\d+):(?P<size>\d+)$")


@dataclass(frozen=True)
class SourceItem:
    """One input image. `location` is a path/URL, or a tar member (see the module docstring)."""

    image_id: str
    caption: str
    location: str
    refused: str | None = None  # a named failure known when listing (e.g. `undecodable_name`): never read

    def as_dict(self) -> dict[str, str]:
        return {"image_id": self.image_id, "caption": self.caption, "location": self.location}


@dataclass(frozen=True)
class TarMember:
    """A parsed tar location: the tar's URL, the member's name, and its data's byte range when known."""

    url: str
    member: str
    offset: int | None = None
    size: int | None = None


def tar_location(tar_url: str, member: str, offset: int | None = None, size: int | None = None) -> str:
    """`tar+URL#member@offset:size` (a member of an uncompressed tar), or `tar+URL#member`."""
    where = f"{TAR_PREFIX}{tar_url}#{member}"
    return where if offset is None or size is None else f"{where}@{offset}:{size}"


def parse_tar_location(location: str) -> TarMember | None:
    """The tar member `location` names, or None when it is a plain path/URL."""
    if not location.startswith(TAR_PREFIX):
        return None
    url, _, member = location[len(TAR_PREFIX):].rpartition("#")
    ranged = _RANGE.match(member)
    if ranged:
        return TarMember(url, ranged["member"], int(ranged["offset"]), int(ranged["size"]))
    return TarMember(url, member)


def without_range(location: str) -> str:
    """`location` without a tar member's byte range (the form every tar location had before ranges)."""
    member = parse_tar_location(location)
    return location if member is None or member.offset is None else tar_location(member.url, member.member)


def whole_tar_url(location: str) -> str | None:
    """The URL of the tar that must be read from its start to reach `location` (a compressed tar's member),
    else None (a plain file, or a member with a byte range)."""
    member = parse_tar_location(location)
    return member.url if member is not None and member.offset is None else None


def _read_ranges(url: str, wanted: dict[str, TarMember], out: dict[str, bytes | Exception]) -> None:
    """Read the byte ranges of `wanted` (location -> member of tar `url`), merging near neighbours."""
    fs, path = storage.filesystem(url)
    ranges = sorted((m.offset or 0, m.size or 0, loc, m.member) for loc, m in wanted.items())
    i = 0
    while i < len(ranges):
        start, end, j = ranges[i][0], ranges[i][0] + ranges[i][1], i + 1
        while j < len(ranges) and ranges[j][0] - end <= MERGE_GAP and ranges[j][0] + ranges[j][1] - start <= MAX_READ:
            end, j = max(end, ranges[j][0] + ranges[j][1]), j + 1
        try:
            block: bytes | Exception = fs.cat_file(path, start, end)
        except Exception as e:  # missing tar, permission, network: recorded per image
            block = e
        for offset, size, loc, name in ranges[i:j]:
            data = block if isinstance(block, Exception) else block[offset - start:offset - start + size]
            out[loc] = data if isinstance(data, Exception) or len(data) == size else EOFError(
                f"{name}: {len(data)} of {size} bytes at offset {offset} of {url}; the tar changed since planning")
        i = j


def _scan_tar(url: str, wanted: dict[str, list[str]], out: dict[str, bytes | Exception]) -> None:
    """Read members of tar `url` from its start (member name -> its locations), stopping after the last."""
    left = set(wanted)
    try:
        with fsspec.open(url, "rb") as f, tarfile.open(fileobj=f, mode="r:*") as tar:
            for m in tar:
                if m.name in left and m.isfile():
                    data = tar.extractfile(m).read()  # type: ignore[union-attr]
                    out.update(dict.fromkeys(wanted[m.name], data))
                    left.discard(m.name)
                    if not left:
                        break
    except Exception as e:
        for name in left:
            out.update(dict.fromkeys(wanted[name], e))
        return
    for name in left:
        out.update(dict.fromkeys(wanted[name], FileNotFoundError(f"{name} not in {url}")))


def _read_file(location: str, max_bytes: int | None) -> bytes | Exception:
    """The bytes of a plain file, at most `max_bytes` + 1 of them (enough to say it is too large); a local
    path that is not a regular file (a FIFO, a device, a socket) is refused without being opened, so a
    read never blocks."""
    try:
        fs, path = storage.filesystem(location)
        if isinstance(fs, LocalFileSystem):
            mode = os.stat(path).st_mode
            if not stat.S_ISREG(mode):
                return InputRefused(f"{NOT_A_FILE}: {'folder' if stat.S_ISDIR(mode) else 'special file'}")
        with fsspec.open(location, "rb") as f:
            return f.read(-1 if max_bytes is None else max_bytes + 1)
    except Exception as e:  # missing file, permission, network: recorded per image
        return e


def fetch_bytes(locations: Iterable[str], max_bytes: int | None = None) -> dict[str, bytes | Exception]:
    """Bytes of each location (or the exception that reading it raised), keyed by location. Members with
    byte ranges are read as ranges; a tar without them is read once, from its start to its last wanted member.
    `max_bytes` bounds what is read of a plain file (intake refuses anything longer as too_large)."""
    out: dict[str, bytes | Exception] = {}
    ranged: dict[str, dict[str, TarMember]] = defaultdict(dict)
    scanned: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for loc in dict.fromkeys(locations):
        member = parse_tar_location(loc)
        if member is None:
            out[loc] = _read_file(loc, max_bytes)
        elif member.offset is not None:
            ranged[member.url][loc] = member
        else:
            scanned[member.url][member.member].append(loc)
    for url, wanted_ranges in ranged.items():
        _read_ranges(url, wanted_ranges, out)
    for url, wanted_names in scanned.items():
        _scan_tar(url, wanted_names, out)
    return out


def probe_locations(items: list[SourceItem], count: int = 5) -> tuple[int, str]:
    """Read up to `count` spread-out items: (how many were readable, the first read error).

    Members of compressed tars are not read again: the listing has just read those tars whole (an
    unreadable one is an error there), and reaching a member would decompress its tar a second time;
    they count as readable."""
    if not items:
        return 0, ""
    step = max(1, len(items) // count)
    chosen = items[::step][:count]
    skipped = sum(whole_tar_url(it.location) is not None for it in chosen)
    fetched = fetch_bytes(it.location for it in chosen if whole_tar_url(it.location) is None)
    errors = [v for v in fetched.values() if isinstance(v, Exception)]
    first = f"{type(errors[0]).__name__}: {errors[0]}"[:200] if errors else ""
    return skipped + len(fetched) - len(errors), first
