"""Whether a folder may receive a PAD build: checked by `pad annotate` before anything is written.

A build goes into a new or empty folder, or into a PAD build (one with `plan.json`). A folder that holds
anything a PAD build does not write (a user's `thesis.txt`, their own `config.yaml` beside it) is refused
in one line: a build would overwrite files of the same names. A folder with shard files but no
`plan.json` (a lost or deleted plan) is refused too: its shards cannot be checked against a plan, and
re-planning over them would adopt them unchecked; `--redo all` rebuilds every shard of a new plan there
(the old records are never read as committed: they do not carry the new plan's identity), or a fresh
`--out` starts clean. Hidden entries (`.DS_Store`, `.ipynb_checkpoints`) are ignored.
"""

from __future__ import annotations

import posixpath

from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.layout import PLAN_FILE, is_build_file, parse_shard_file


def top_level_names(out: str) -> list[str]:
    """Names of the entries (files and folders) directly in `out`; empty when it does not exist."""
    fs, path = storage.filesystem(out)
    if not fs.exists(path) or not fs.isdir(path):
        return []
    return sorted(posixpath.basename(str(p).rstrip("/")) for p in fs.ls(path, detail=False))


def check_out_folder(out: str, redo_all: bool = False) -> None:
    """Refuse `out` when it is neither empty nor a PAD build (see the module docstring)."""
    names = [n for n in top_level_names(out) if not n.startswith(".")]
    if PLAN_FILE in names:
        return
    foreign = [n for n in names if not is_build_file(n)]
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise PadError(f"--out {out}: not a PAD build (no {PLAN_FILE}) and not empty (holds {shown}); "
                       "choose a new or empty folder")
    shards = [n for n in names if parse_shard_file(n) is not None]
    if shards and not redo_all:
        raise PadError(f"--out {out}: holds {len(shards)} shard files but no {PLAN_FILE}, so no shard can be "
                       "checked against its plan; rebuild them all with --redo all, or use a fresh --out")
