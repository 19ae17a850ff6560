"""Whether a run starts fresh or resumes, and from which checkpoint: the one place a resume is refused.

`resume_state(output_dir, resume, identity)` is decided on rank 0 before anything loads: a fresh run refuses an
output folder that holds checkpoints, a resume needs a complete checkpoint whose resume identity (the manifest
fields that make a checkpoint meaningful, `trainer.config`) matches the manifest's.
"""

from __future__ import annotations

import os
from typing import Any

from pad_pipeline.core.errors import PadError
from trainer.training import checkpoint


def resume_state(output_dir: str, resume: bool | str, identity: dict[str, Any]
                 ) -> tuple[str | None, dict[str, Any] | None]:
    """(newest complete checkpoint, its state) to resume from, or (None, None) for a fresh run.
    `resume`: True (a checkpoint must exist), False (none may exist) or "auto" (a Ray Train restart)."""
    latest = checkpoint.latest_checkpoint(output_dir)
    if resume == "auto":
        resume = latest is not None
    if not resume:
        if latest is not None:
            raise PadError(f"{output_dir}: holds checkpoints ({os.path.basename(latest)}); "
                           f"pass --resume to continue it or choose another train.output_dir")
        return None, None
    if latest is None:
        raise PadError(f"{output_dir}: no complete checkpoint to resume from")
    state = checkpoint.read_state(latest)
    have = state.get("identity", {})
    changed = sorted(k for k in identity if identity[k] != have.get(k))
    if changed:
        raise PadError(f"{latest}: cannot resume, the manifest changed {', '.join(changed)} since this checkpoint")
    return latest, state
