"""`pad eval` of a miniature manifest: per seed, make the runs, evaluate them, then mean and spread over seeds.

For each seed, `prepare_miniature` makes (or reuses) the vision tower, the LM warm-up, the stage-1 runs and the
stage-2 REC runs; `seed_config` turns them into an ordinary evaluation manifest (one model per stage-2 init, its
stage-1 run or a random projector on the seed's tower and warmed-up LLM for the captions; the held-out `refer`
split and caption JSON as the tasks), which `pad eval` runs into `OUTPUT/seed-N/eval/` like any other. The
top-level `eval.json` and `eval.md` hold every number as mean ± std over the seeds (`trainer.eval.report.aggregate`).
"""

from __future__ import annotations

import os

from trainer.eval.config import RANDOM, CaptionsConfig, EvalConfig, ModelSpec, RecConfig, RecSplitConfig
from trainer.eval.miniature.prepare import MiniatureRuns, prepare_miniature
from trainer.eval.report import Report, aggregate
from trainer.eval.run import evaluate, log, write_outputs

HELDOUT_SPLIT = "shapes_heldout"


def seed_config(cfg: EvalConfig, runs: MiniatureRuns) -> EvalConfig:
    """The evaluation manifest of one seed's runs (written to OUTPUT/seed-N/eval/config.yaml)."""
    mini = cfg.miniature
    assert mini is not None
    model = mini.model.model_copy(deep=True)
    if runs.vision is not None:
        model.vision.checkpoint = runs.vision
    if runs.warmup is not None:
        model.llm.checkpoint = runs.warmup
    models = {name: ModelSpec(stage1=stage1, stage2=stage2, seed=runs.seed,
                              model=model if stage1 == RANDOM else None)
              for name, (stage1, stage2) in runs.runs.items()}
    refer = runs.refer
    split = RecSplitConfig(refs=refer.refs, instances=refer.instances, images=refer.images, split=refer.split)
    return EvalConfig(output_dir=os.path.join(cfg.output_dir, f"seed-{runs.seed}", "eval"), models=models,
                      captions=CaptionsConfig(annotations=runs.captions, images=refer.images,
                                              max_new_tokens=mini.eval.caption_tokens),
                      rec=RecConfig(splits={HELDOUT_SPLIT: split}, max_new_tokens=mini.eval.rec_tokens),
                      generation=cfg.generation)


def evaluate_miniature(cfg: EvalConfig) -> Report:
    """Every seed made and evaluated; the report of their mean and spread."""
    assert cfg.miniature is not None
    reports = []
    for seed in cfg.miniature.seeds:
        log(f"miniature seed {seed}: making the runs")
        seed_cfg = seed_config(cfg, prepare_miniature(cfg.miniature, cfg.output_dir, seed))
        report = evaluate(seed_cfg)
        write_outputs(seed_cfg, report)
        reports.append(report)
    return aggregate(reports, cfg.miniature.seeds)
