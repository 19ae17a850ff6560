"""Whether a run starts fresh or resumes, and from which checkpoint: the one place a resume is refused.

`resume_point(output_dir, resume)` refuses a fresh run in a folder that holds checkpoints and a resume without a
complete one (the driver asks it before a job starts, the loop again on rank 0); `resume_state(output_dir, resume,
identity)` also needs the checkpoint's resume identity (the manifest fields that make a checkpoint meaningful,
`trainer.config`) to match the manifest's.
"""

from __future__ import annotations

import os
from typing import Any

from pad_pipeline.core.errors import PadError
from trainer.training import checkpoint


def resume_point(output_dir: str, resume: bool | str) -> str | None:
    """The checkpoint a run resumes from (None: it starts fresh), or the one refusal: a fresh run in a folder that
    holds checkpoints, or a resume without a complete one. `resume` as in `resume_state`."""
    latest = checkpoint.latest_checkpoint(output_dir)
    if resume == "auto":
        return latest
    if not resume and latest is not None:
        raise PadError(f"{output_dir}: holds checkpoints ({os.path.basename(latest)}); "
                       f"pass --resume to continue it or choose another train.output_dir")
    if resume and latest is None:
        raise PadError(f"{output_dir}: no complete checkpoint to resume from (drop --resume)")
    return latest


def resume_state(output_dir: str, resume: bool | str, identity: dict[str, Any]
                 ) -> tuple[str | None, dict[str, Any] | None]:
    """(newest complete checkpoint, its state) to resume from, or (None, None) for a fresh run.
    `resume`: True (a checkpoint must exist), False (none may exist) or "auto" (a Ray Train restart)."""
    latest = resume_point(output_dir, resume)
    if latest is None:
        return None, None
    state = checkpoint.read_state(latest)
    have = state.get("identity", {})
    changed = sorted(k for k in identity if identity[k] != have.get(k))
    if changed:
        raise PadError(f"{latest}: cannot resume, the manifest changed {', '.join(changed)} since this checkpoint")
    return latest, state
