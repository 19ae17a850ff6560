"""What a reproduction manifest makes before measuring: synthetic builds, then stage-1 training runs.

`build_synthetic_sets(cfg)` writes (or finishes) every `synthetic:` build; `warm_up_llm_first(cfg)` makes the
`warmup_llm:` LLM and returns the config that loads it. `train_projectors(cfg)` runs
`pad pretrain` (`trainer.training.driver.run_pretrain`) for every `train.runs` entry, each in a child process and in
`OUTPUT/train/NAME/`, with its resolved manifest written beside it as `NAME.yaml`. A run whose folder
already holds an export made from the same resolved config is reused, one with checkpoints of the
same config is resumed, and a folder made from another config is refused (never overwritten).
"""

from __future__ import annotations

import multiprocessing
import os
import sys

from pad_pipeline.core import runtime
from pad_pipeline.core.config import dump_resolved
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.shapes import build_synthetic
from trainer.analysis.config import AnalyzeConfig, pretrain_config, warmup_dir
from trainer.config.pretrain import PretrainConfig
from trainer.export.from_run import recorded_config
from trainer.run_layout import RunLayout
from trainer.training import checkpoint


def build_synthetic_sets(cfg: AnalyzeConfig) -> None:
    for name, build in cfg.synthetic.items():
        result = build_synthetic(build)
        print(f"pad analyze: synthetic build {name!r} at {build.out}: {build.num_scenes} scenes, "
              f"{result.shards_written} shards written, {result.shards_skipped} already there",
              file=sys.stderr)


def warm_up_llm_first(cfg: AnalyzeConfig) -> AnalyzeConfig:
    """With `warmup_llm:`, the LM warm-up's folder (made, or reused) as model.llm.checkpoint; else `cfg`."""
    w = cfg.warmup_llm
    if w is None:
        return cfg
    from trainer.eval.miniature.scenes import rec_scenes  # torch only where the warm-up runs
    from trainer.eval.miniature.warmup import WarmupConfig, is_done, scene_texts, warm_up_llm

    folder, settings = warmup_dir(cfg), WarmupConfig(**w.model_dump(include=set(WarmupConfig.model_fields)))
    if is_done(folder, settings, w.seed):
        print(f"pad analyze: LM warm-up: reusing {folder}", file=sys.stderr)
    else:
        texts = scene_texts(rec_scenes(cfg.synthetic[w.synthetic], w.expressions_per_image))
        loss = warm_up_llm(settings, texts, folder, w.seed)
        print(f"pad analyze: LM warm-up: {w.steps} steps on {len(texts)} texts, final loss {loss:.3f}",
              file=sys.stderr)
    model = cfg.model.model_copy(deep=True)
    model.llm.checkpoint = folder
    return cfg.model_copy(update={"model": model})


def _train_one(pcfg: PretrainConfig, name: str) -> None:
    out = pcfg.train.output_dir
    same = recorded_config(out) == pcfg.model_dump(mode="json")
    if same and os.path.isfile(RunLayout(out).exported_projector):
        print(f"pad analyze: train run {name!r}: reusing the finished run in {out}", file=sys.stderr)
        return
    resume = same and checkpoint.latest_checkpoint(out) is not None
    if not resume and os.path.isdir(out) and os.listdir(out):
        raise PadError(f"{out}: holds a run of another config; remove it to retrain run {name!r}")
    manifest = out.rstrip("/") + ".yaml"
    os.makedirs(os.path.dirname(manifest) or ".", exist_ok=True)
    dump_resolved(pcfg, manifest)
    print(f"pad analyze: train run {name!r} (beta_max {pcfg.train.beta_max}): pad pretrain {manifest}"
          f"{' --resume' if resume else ''}", file=sys.stderr)
    # A fresh process per run: DeepSpeed keeps process-group state at module level, so a second
    # in-process run after the first one's group is destroyed fails; a child also frees the memory.
    child = multiprocessing.get_context("spawn").Process(target=_pretrain_child, args=(manifest, resume))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise PadError(f"train run {name!r}: pad pretrain {manifest} failed "
                       f"(exit code {child.exitcode}; see above)")


def _pretrain_child(manifest: str, resume: bool) -> None:
    os.dup2(2, 1)  # the training's chatter (DeepSpeed logs to stdout) stays off the printed table
    from trainer.training import driver  # DeepSpeed is imported only where a run trains

    runtime.prepare_cpu_threads()
    try:
        driver.run_pretrain(manifest, [], resume=resume)
    except PadError as e:
        print(f"pad pretrain: error: {e}", file=sys.stderr)
        sys.exit(1)


def train_projectors(cfg: AnalyzeConfig) -> None:
    if cfg.train is None:
        return
    for name in cfg.train.runs:
        _train_one(pretrain_config(cfg, name), name)
