"""One training run of the miniature (`pad pretrain` or `pad sft`) in a child process, reused when finished.

`run_stage(cfg, out, name, stage)` writes the resolved manifest beside the run folder (`OUT.yaml`), runs the stage's
driver in a fresh spawned process (DeepSpeed keeps process-group state at module level, so a second run in
one process fails; a child also frees its memory) and, on success, writes `OUT.done.json` holding the
resolved config. A run whose marker and recorded config match is reused; one with checkpoints of the same
config is resumed (restarted when it stopped before its first checkpoint); a folder made from another config
is refused, never overwritten.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
from typing import Literal

from pad_pipeline.core import runtime
from pad_pipeline.core.config import ConfigModel, dump_resolved
from pad_pipeline.core.errors import PadError
from trainer.export.from_run import recorded_config
from trainer.training import checkpoint

Stage = Literal["pretrain", "sft"]


def _done_path(out: str) -> str:
    return out.rstrip("/") + ".done.json"


def is_finished(cfg: ConfigModel, out: str) -> bool:
    dumped = cfg.model_dump(mode="json")
    if recorded_config(out) != dumped or not os.path.isfile(_done_path(out)):
        return False
    with open(_done_path(out)) as f:
        return bool(json.load(f) == dumped)


def run_stage(cfg: ConfigModel, out: str, name: str, stage: Stage) -> None:
    """Train `cfg` (a PretrainConfig or SftConfig whose train.output_dir is `out`) unless already finished."""
    if is_finished(cfg, out):
        print(f"miniature: {stage} run {name!r}: reusing the finished run in {out}", file=sys.stderr)
        return
    same = recorded_config(out) == cfg.model_dump(mode="json")
    resume = same and checkpoint.latest_checkpoint(out) is not None
    if same and not resume:
        shutil.rmtree(out)  # this very run, stopped before its first checkpoint: nothing to keep, start again
    if not resume and os.path.isdir(out) and os.listdir(out):
        raise PadError(f"{out}: holds a run of another config; remove it to retrain {stage} run {name!r}")
    manifest = out.rstrip("/") + ".yaml"
    os.makedirs(os.path.dirname(manifest) or ".", exist_ok=True)
    dump_resolved(cfg, manifest)
    print(f"miniature: {stage} run {name!r}: pad {stage} {manifest}{' --resume' if resume else ''}",
          file=sys.stderr)
    child = multiprocessing.get_context("spawn").Process(target=_child, args=(stage, manifest, resume))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise PadError(f"{stage} run {name!r}: pad {stage} {manifest} failed (exit code {child.exitcode}; see above)")
    with open(_done_path(out), "w") as f:
        json.dump(cfg.model_dump(mode="json"), f)


def _child(stage: Stage, manifest: str, resume: bool) -> None:
    os.dup2(2, 1)  # the training's chatter (DeepSpeed logs to stdout) stays off any printed table
    from trainer.training import driver  # DeepSpeed is imported only where a run trains

    runtime.prepare_cpu_threads()
    run = driver.run_pretrain if stage == "pretrain" else driver.run_sft
    try:
        code = run(manifest, [], resume=resume)
    except PadError as e:
        print(f"pad {stage}: error: {e}", file=sys.stderr)
        sys.exit(1)
    sys.exit(code or 0)
