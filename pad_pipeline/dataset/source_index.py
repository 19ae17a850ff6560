"""The typed record of `OUT/source_index.json`: the files a plan's source was listed from, as stored then.

A `SourceIndex` holds each source file's URL, size and stamp (etag, mtime or last-modified, whatever
`fs.info` gives) taken just before the listing, and the `source_fingerprint` of the plan that listing
made. A resume whose files all still match reuses the plan without opening them; any difference (or a
store that gives no stamp) means the source is listed again. It sits beside `records.py` (the other
records) because that file is at its size limit; it uses the same validated JSON helpers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pad_pipeline.dataset.records import RecordError, _get, _mapping

SOURCE_INDEX_VERSION = 1


@dataclass(frozen=True)
class SourceFile:
    """One file a source is listed from: `stamp` is `"key=value"` of the first version field `fs.info`
    gives (`ETag`, `mtime`, ...), None when it gives none (then the file is never trusted unread)."""

    url: str
    size: int
    stamp: str | None

    def to_json(self) -> list[Any]:
        return [self.url, self.size, self.stamp]

    @classmethod
    def from_json(cls, data: Any, where: str) -> "SourceFile":
        if (not isinstance(data, list) or len(data) != 3 or not isinstance(data[0], str)
                or isinstance(data[1], bool) or not isinstance(data[1], int)
                or not isinstance(data[2], (str, type(None)))):
            raise RecordError(f"{where}: expected [url, size, stamp], got {data!r}"[:300])
        return cls(data[0], data[1], data[2])


@dataclass
class SourceIndex:
    """`source_index.json`: the source files of the plan whose fingerprint is `source_fingerprint`."""

    source_fingerprint: str
    files: list[SourceFile]
    version: int = SOURCE_INDEX_VERSION

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "source_fingerprint": self.source_fingerprint,
                "files": [f.to_json() for f in self.files]}

    def encode(self) -> bytes:
        return json.dumps(self.to_json()).encode()

    @classmethod
    def from_json(cls, data: Any, where: str) -> "SourceIndex":
        d = _mapping(data, where)
        files = [SourceFile.from_json(f, f"{where} files[{i}]") for i, f in enumerate(_get(d, "files", list, where))]
        return cls(_get(d, "source_fingerprint", str, where), files,
                   _get(d, "version", int, where, SOURCE_INDEX_VERSION))

    @classmethod
    def decode(cls, data: bytes, where: str) -> "SourceIndex":
        try:
            return cls.from_json(json.loads(data), where)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RecordError(f"{where}: not valid JSON ({e})") from None
