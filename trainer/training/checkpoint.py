"""Checkpoint folders that are either complete or invisible (local or shared file system).

Layout under `OUTPUT/checkpoints/`: `step-00000100/` holds DeepSpeed's files (`deepspeed/`: projector,
optimizer, scheduler), `projector.safetensors` and `trainer_state.json` (step, data position, frozen
shard list, resume identity). Protocol: every rank writes into `step-00000100.partial/`; after a
barrier rank 0 writes the state file last (fsynced), renames the folder to its final name (atomic on
POSIX) and then atomically replaces `latest`. A crash anywhere before the rename leaves only a
`.partial` folder, which readers ignore and the next save of that step removes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from typing import Any

from pad_pipeline.core.errors import PadError
from trainer.run_layout import CHECKPOINT_PREFIX, STATE_FILE, RunLayout, checkpoint_name

_NAME = re.compile(rf"^{CHECKPOINT_PREFIX}(\d{{8}})$")


def checkpoints_dir(output_dir: str) -> str:
    return RunLayout(output_dir).checkpoints


def partial_dir(output_dir: str, step: int) -> str:
    return RunLayout(output_dir).partial(step)


def prepare_partial(output_dir: str, step: int) -> str:
    """Rank 0, before the barrier: an empty `.partial` folder for `step` (a stale one is removed)."""
    path = partial_dir(output_dir, step)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def _write_json_durably(path: str, data: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(output_dir: str, step: int, state: dict[str, Any], keep: int) -> str:
    """Rank 0, after all ranks wrote into the partial folder: state file, rename, `latest`, pruning."""
    partial = partial_dir(output_dir, step)
    _write_json_durably(os.path.join(partial, STATE_FILE), {**state, "step": step})
    final = RunLayout(output_dir).checkpoint(step)
    shutil.rmtree(final, ignore_errors=True)  # a re-save of the same step after a resume
    os.rename(partial, final)
    _fsync_dir(checkpoints_dir(output_dir))
    latest = RunLayout(output_dir).latest
    with open(latest + ".tmp", "w") as f:
        f.write(checkpoint_name(step) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(latest + ".tmp", latest)
    for old in complete_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def complete_checkpoints(output_dir: str) -> list[str]:
    """Complete checkpoint folders, oldest first (a folder counts only under its final name with a state)."""
    root = checkpoints_dir(output_dir)
    if not os.path.isdir(root):
        return []
    found = []
    for name in os.listdir(root):
        m = _NAME.match(name)
        if m and os.path.isfile(os.path.join(root, name, STATE_FILE)):
            found.append((int(m.group(1)), os.path.join(root, name)))
    return [path for _, path in sorted(found)]


def latest_checkpoint(output_dir: str) -> str | None:
    """The newest complete checkpoint (the `latest` pointer is a hint; the folders are the truth)."""
    found = complete_checkpoints(output_dir)
    return found[-1] if found else None


def read_state(checkpoint: str) -> dict[str, Any]:
    try:
        with open(os.path.join(checkpoint, STATE_FILE)) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise PadError(f"{checkpoint}: unreadable {STATE_FILE} ({e})") from None
