"""The `pad eval MANIFEST` command: load and check the manifest, evaluate, print the tables."""

from __future__ import annotations

import os
import sys

from pad_pipeline.core import runtime
from trainer.eval.config import load_eval_config
from trainer.eval.run import EVAL_MD, evaluate, log, preflight, write_outputs


def run(manifest: str, overrides: list[str]) -> int:
    runtime.prepare_cpu_threads()
    cfg = load_eval_config(manifest, overrides)
    if cfg.miniature is not None:
        from trainer.eval.miniature.evaluate import evaluate_miniature

        report = evaluate_miniature(cfg)
    else:
        report = evaluate(cfg, preflight(cfg))
    print(write_outputs(cfg, report))
    log(f"wrote {os.path.join(cfg.output_dir, EVAL_MD)}, eval.json and predictions/")
    sys.stdout.flush()
    return 0
