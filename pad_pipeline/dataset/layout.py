"""Every file name of a PAD build, in one place (DESIGN.md, "Output layout of a PAD build").

```
OUT/plan.json                 frozen shard plan (`Plan`)
OUT/plan/pad-NNNNNN.jsonl     the planned inputs of each shard (`PlannedInput` lines)
OUT/source_index.json         sizes and stamps of the source files the plan was listed from (`SourceIndex`)
OUT/config.yaml               the resolved manifest (with the --out actually used)
OUT/lease.json                the writer's lease while a `pad annotate` runs (`dataset.lease`)
OUT/pad-NNNNNN.tar            WebDataset shard: <key>.jpg + <key>.json per sample
OUT/pad-NNNNNN.parquet        per-shard index: every input image with its status
OUT/pad-NNNNNN.json           shard record (`ShardRecord`), written last: the commit marker
OUT/pad-NNNNNN.error.json     a shard that failed after its retries (not a commit marker)
```
Nothing else in the code base spells these names: `BuildLayout(out).tar(3)` is the URL of shard 3's
tar, `shard_index("pad-000003.json")` reads a name back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pad_pipeline.core import storage

SHARD_PREFIX = "pad-"
PLAN_FILE = "plan.json"
PLAN_INPUTS_DIR = "plan"
SOURCE_INDEX_FILE = "source_index.json"
CONFIG_FILE = "config.yaml"
LEASE_FILE = "lease.json"
BUILD_NAMES = (PLAN_FILE, PLAN_INPUTS_DIR, SOURCE_INDEX_FILE, CONFIG_FILE, LEASE_FILE)
SHARD_GLOB = f"{SHARD_PREFIX}*"
TAR_GLOB = f"{SHARD_PREFIX}*.tar"
RECORD_GLOB = f"{SHARD_PREFIX}*.json"

_SHARD_FILE = re.compile(rf"^{SHARD_PREFIX}(\d{{6}})\.(tar|parquet|json|error\.json)$")


def shard_name(index: int) -> str:
    """`pad-000003`: the stem shared by every file of shard 3."""
    if index < 0 or index > 999_999:
        raise ValueError(f"shard index {index} outside 0-999999")
    return f"pad-{index:06d}"


def tar_name(index: int) -> str:
    return f"{shard_name(index)}.tar"


def index_name(index: int) -> str:
    return f"{shard_name(index)}.parquet"


def record_name(index: int) -> str:
    return f"{shard_name(index)}.json"


def error_name(index: int) -> str:
    return f"{shard_name(index)}.error.json"


def plan_inputs_name(index: int) -> str:
    return f"{PLAN_INPUTS_DIR}/{shard_name(index)}.jsonl"


def shard_files(index: int) -> list[str]:
    """The files that make up committed shard `index`, in the order they are written."""
    return [tar_name(index), index_name(index), record_name(index)]


def parse_shard_file(name: str) -> tuple[int, str] | None:
    """`pad-000003.error.json` -> (3, "error.json"); None for names that are not shard files."""
    m = _SHARD_FILE.match(name)
    return (int(m.group(1)), m.group(2)) if m else None


def is_build_file(name: str) -> bool:
    """Whether a top-level entry `name` of OUT is one a PAD build writes (also a temporary name of one)."""
    name = re.sub(r"\.tmp-[0-9a-f]{8}$", "", name)
    return name in BUILD_NAMES or parse_shard_file(name) is not None


def shard_index(name: str, kind: str = "json") -> int | None:
    """The shard index of `name` when it is a shard file of `kind` (tar, parquet, json, error.json)."""
    parsed = parse_shard_file(name)
    return parsed[0] if parsed and parsed[1] == kind else None


@dataclass(frozen=True)
class BuildLayout:
    """URLs of the files of the build at `out` (a local folder or an fsspec URL)."""

    out: str

    def url(self, name: str) -> str:
        return storage.join(self.out, *name.split("/"))

    @property
    def plan(self) -> str:
        return self.url(PLAN_FILE)

    @property
    def source_index(self) -> str:
        return self.url(SOURCE_INDEX_FILE)

    @property
    def config(self) -> str:
        return self.url(CONFIG_FILE)

    @property
    def lease(self) -> str:
        return self.url(LEASE_FILE)

    def plan_inputs(self, index: int) -> str:
        return self.url(plan_inputs_name(index))

    def tar(self, index: int) -> str:
        return self.url(tar_name(index))

    def index(self, index: int) -> str:
        return self.url(index_name(index))

    def record(self, index: int) -> str:
        return self.url(record_name(index))

    def error(self, index: int) -> str:
        return self.url(error_name(index))
