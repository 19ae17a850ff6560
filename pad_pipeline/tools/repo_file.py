"""One file of a dataset repository as `pad publish` lays it out and `hub_upload` sends it.

A module of its own so `publish` (which lays the files out and calls the upload) and `hub_upload`
(which sends them) both import it and not each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from pad_pipeline.core import storage


@dataclass(frozen=True)
class RepoFile:
    """One file of the repository: copied from the build (`source`) or generated (`data`)."""

    path: str
    size: int
    source: str | None = None
    data: bytes | None = None
    sha256: str | None = None   # when known without reading (a tar: from its shard record)

    def read(self) -> bytes:
        return self.data if self.data is not None else storage.read_bytes(self.source)  # type: ignore[arg-type]
