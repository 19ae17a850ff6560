"""`pad eval MANIFEST`: check everything, then caption, answer REC, run lmms-eval, and write the tables.

`preflight(cfg)` opens every annotation file and split and checks every run folder and export named by the
manifest (configs and file names only), so a missing file, split or export is a one-line error before any
model loads. `evaluate(cfg)` then loads each model once per stage, generates (batched, greedy, on the first
GPU when there is one), keeps every sample's prediction in `OUTPUT/predictions/` and scores the task from
those lines; `write_outputs` writes `eval.json`, `eval.md` and the resolved `config.yaml`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any, Callable, Sequence

from pad_pipeline.core.config import config_dict, dump_resolved
from pad_pipeline.core.errors import PadError
from trainer.eval import readers
from trainer.eval.answerer import Answerer, SubjectRef
from trainer.eval.answering import answerer_for
from trainer.eval.caption_metrics import check_caption_scoring, score_captions
from trainer.eval.config import EvalConfig, ModelSpec, RecSplitConfig
from trainer.eval.generate import Query
from trainer.eval.hf_source import HUB_PREFIX, is_hf_llava
from trainer.eval.items import CaptionItem, RecItem
from trainer.eval.lmms import check_export
from trainer.eval.lmms_paper import PAPER_TASKS, paper_task_names
from trainer.eval.predictions import predictions_path, read_predictions, reusable_answers, write_predictions
from trainer.eval.rec_task import rec_queries, rec_rows, score_rows
from trainer.eval.report import Report
from trainer.eval.subject import check_stage1, check_stage2, device_and_dtype
from trainer.eval.tables import render_markdown
from trainer.run_layout import RunLayout

EVAL_JSON, EVAL_MD, LMMS_DIR = "eval.json", "eval.md", "lmms-eval"


def log(message: str) -> None:
    print(f"pad eval: {message}", file=sys.stderr, flush=True)


@dataclass
class Plan:
    """What preflight found: the items of every task, and the weights every model will load."""

    captions: list[CaptionItem] = field(default_factory=list)
    rec: dict[str, int] = field(default_factory=dict)           # split -> expressions it will read
    stage1: dict[str, str] = field(default_factory=dict)   # model -> projector file or "random"
    stage2: dict[str, str] = field(default_factory=dict)   # model -> checkpoint folder
    hf: dict[str, str] = field(default_factory=dict)       # model -> HF export folder


def hf_folder(name: str, spec: ModelSpec) -> str | None:
    """What lmms-eval loads for model `name`: `hf`, else `stage2` when it is one, else STAGE2/export-hf."""
    if spec.hf:
        return spec.hf
    if spec.stage2 and is_hf_llava(spec.stage2):
        return spec.stage2.removeprefix(HUB_PREFIX)
    return RunLayout(spec.stage2).export("hf") if spec.stage2 else None


def rec_items(name: str, split: RecSplitConfig) -> list[RecItem]:
    """The expressions of split `name` (images read from the files only now, after preflight)."""
    if split.format == "parquet":
        assert split.path is not None
        return list(readers.read_parquet(split.path, split.split, split.limit, field=f"rec.splits.{name}"))
    assert split.refs and split.instances and split.images and split.split
    return readers.read_refer(split.refs, split.instances, split.images, split.split, split.limit,
                              field=f"rec.splits.{name}")


def check_rec_split(name: str, split: RecSplitConfig) -> int:
    """The number of expressions of split `name`, checked without reading an image."""
    if split.format == "parquet":
        assert split.path is not None
        return readers.check_parquet(split.path, split.split, split.limit, field=f"rec.splits.{name}")
    return len(rec_items(name, split))  # refer items hold image paths, which it checks exist


def preflight(cfg: EvalConfig) -> Plan:
    plan = Plan()
    for name, spec in cfg.models.items():
        if cfg.captions is not None and spec.stage1 is not None:
            plan.stage1[name] = check_stage1(name, spec)
        if cfg.rec is not None and spec.stage2 is not None:
            plan.stage2[name] = check_stage2(name, spec.stage2)
        if cfg.lmms_eval is not None:
            folder = hf_folder(name, spec)
            if folder is None:
                continue
            if spec.stage2 and spec.stage2.startswith(HUB_PREFIX) and not spec.hf:
                plan.hf[name] = folder  # a hub id: lmms-eval loads it from the Hub
                continue
            if not os.path.isfile(os.path.join(folder, "config.json")):
                raise PadError(f"models.{name}: {folder} is not an HF export (no config.json); write it with "
                               f"`pad export {spec.stage2} --format hf` or set models.{name}.hf")
            check_export(folder)
            plan.hf[name] = folder
    if cfg.captions is not None:
        c = cfg.captions
        check_caption_scoring()
        plan.captions = readers.read_captions(c.annotations, c.images, split=c.split, limit=c.limit)
    if cfg.rec is not None:
        plan.rec = {name: check_rec_split(name, split) for name, split in cfg.rec.splits.items()}
    return plan


class Meter:
    """Progress of one generation pass, printed at most every few seconds and at the end."""

    def __init__(self, what: str, total: int, every_s: float = 5.0):
        self.what, self.total, self.every_s = what, total, every_s
        self.start = self.last = time.monotonic()

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if done < self.total and now - self.last < self.every_s:
            return
        self.last = now
        log(f"{self.what}: {done}/{self.total} answers ({done / max(now - self.start, 1e-9):.1f}/s)")


def _answers(cfg: EvalConfig, answerer: Answerer, queries: Sequence[Query], ids: Sequence[str], path: str,
             what: str, meta: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The answers to `queries`: read back from `path` when an earlier run made them with the same `meta`."""
    meta = {**meta, "dtype": cfg.generation.dtype}
    reused = reusable_answers(path, meta, ids)
    if reused is not None:
        log(f"{what}: reusing the {len(reused)} answers in {path}")
        return reused, meta
    return answerer.answers(queries, meta["max_new_tokens"], Meter(what, len(queries))), meta


def caption_model(cfg: EvalConfig, plan: Plan, name: str, answerer: Answerer) -> dict[str, Any]:
    assert cfg.captions is not None
    items = plan.captions
    path = predictions_path(cfg.output_dir, "captions", "all", name)
    meta = {"model": plan.stage1[name], "max_new_tokens": cfg.captions.max_new_tokens}
    answers, meta = _answers(cfg, answerer, [Query(i.image, None) for i in items], [i.image_id for i in items],
                             path, f"captions / {name}", meta)
    rows = [{"id": i.image_id, "answer": a, "references": list(i.references)}
            for i, a in zip(items, answers, strict=True)]
    write_predictions(path, rows, meta)
    return score_caption_rows(read_predictions(path))


def score_caption_rows(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Caption metrics of prediction rows (as `caption_model` writes them): recomputed from the lines alone."""
    scores = score_captions({r["id"]: r["answer"] for r in rows}, {r["id"]: r["references"] for r in rows})
    return {"scores": scores.corpus, "missing": scores.missing}


def rec_model(cfg: EvalConfig, plan: Plan, name: str, answerer: Answerer) -> dict[str, Any]:
    assert cfg.rec is not None
    out = {}
    for split, split_cfg in cfg.rec.splits.items():
        items = rec_items(split, split_cfg)
        path = predictions_path(cfg.output_dir, "rec", split, name)
        meta = {"model": plan.stage2[name], "max_new_tokens": cfg.rec.max_new_tokens, "frame": cfg.rec.frame}
        answers, meta = _answers(cfg, answerer, rec_queries(items), [i.sample_id for i in items], path,
                                 f"rec {split} / {name}", meta)
        write_predictions(path, rec_rows(items, answers, cfg.rec.frame, cfg.rec.threshold), meta)
        out[split] = score_rows(read_predictions(path), cfg.rec.frame, cfg.rec.threshold).as_json(cfg.rec.frame)
    return out


Task = Callable[[EvalConfig, Plan, str, Answerer], dict[str, Any]]


def _with_answerer(ref: SubjectRef, cfg: EvalConfig, plan: Plan, task: Task) -> dict[str, Any]:
    """`task` run with model `ref` loaded (once, for all its splits), then freed."""
    answerer = answerer_for(ref, cfg.generation)
    try:
        return task(cfg, plan, ref.name, answerer)
    finally:
        answerer.close()


def evaluate(cfg: EvalConfig, plan: Plan | None = None) -> Report:
    """Run every task of `cfg` on every model; the report `eval.json` holds."""
    plan = plan or preflight(cfg)
    device, dtype = device_and_dtype(cfg.generation)
    report: Report = {"models": {n: {"stage1": plan.stage1.get(n), "stage2": plan.stage2.get(n),
                                     "hf": plan.hf.get(n)} for n in cfg.models},
                      "settings": {"device": str(device), "dtype": str(dtype).removeprefix("torch."),
                                   "gpus": cfg.generation.gpus}}
    captions: dict[str, Any] = {}
    rec: dict[str, dict[str, Any]] = {split: {} for split in plan.rec}
    for name, spec in cfg.models.items():
        if name in plan.stage1:
            log(f"captions / {name}: {len(plan.captions)} images, stage 1 from {plan.stage1[name]}")
            captions[name] = _with_answerer(SubjectRef(name, 1, spec), cfg, plan, caption_model)
        if name in plan.stage2:
            log(f"rec / {name}: {sum(plan.rec.values())} expressions, stage 2 from {plan.stage2[name]}")
            scores = _with_answerer(SubjectRef(name, 2, spec), cfg, plan, rec_model)
            for split, cell in scores.items():
                rec[split][name] = cell
    if cfg.captions is not None and captions:
        missing = next(iter(captions.values()))["missing"]
        report["captions"] = {"scores": {n: c["scores"] for n, c in captions.items()}, "missing": missing,
                              "images": len(plan.captions), "source": cfg.captions.annotations}
    if cfg.rec is not None:
        report["rec"] = {"frame": cfg.rec.frame, "threshold": cfg.rec.threshold, "splits": rec,
                         "average": rec_average(rec)}
    if cfg.lmms_eval is not None:
        report["lmms_eval"] = lmms_section(cfg, plan)
    return report


def rec_average(splits: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per model, the mean over splits of each accuracy (the paper's Avg column)."""
    models = {m for cells in splits.values() for m in cells}
    out = {}
    for m in models:
        cells = [cells[m] for cells in splits.values() if m in cells]
        out[m] = {k: sum(c[k] for c in cells) / len(cells) for k in ("accuracy", "accuracy_image_frame")
                  if all(k in c for c in cells)}
    return out


def lmms_section(cfg: EvalConfig, plan: Plan) -> dict[str, Any]:
    """Tables 6-7: lmms-eval's `llava_hf` on every model's HF export, each task checked to have scored."""
    from trainer.eval.lmms import LmmsRequest, run_lmms_eval

    assert cfg.lmms_eval is not None
    asked = cfg.lmms_eval.tasks or paper_task_names()
    device, dtype = device_and_dtype(cfg.generation)
    scores: dict[str, dict[str, dict[str, float]]] = {}
    samples: dict[str, dict[str, str]] = {}
    tasks: list[str] = []
    for name, folder in plan.hf.items():
        log(f"lmms-eval / {name}: {', '.join(asked)} on {folder}")
        results = run_lmms_eval(LmmsRequest(
            export=folder, tasks=list(asked), output_path=os.path.join(cfg.output_dir, LMMS_DIR, name),
            device=str(device), dtype=str(dtype).removeprefix("torch."), limit=cfg.lmms_eval.limit,
            include_path=cfg.lmms_eval.include_path))
        scores[name] = {task: dict(t.metrics) for task, t in results.tasks.items()}
        samples[name] = {task: t.samples for task, t in results.tasks.items()}
        tasks += [t for t in results.tasks if t not in tasks]
    headline = {t.task: t.metric for t in PAPER_TASKS}
    for name_scores in scores.values():
        for task, metrics in name_scores.items():
            headline.setdefault(task, next(iter(sorted(metrics)), ""))
    return {"tasks": tasks, "scores": scores, "headline": {t: headline[t] for t in tasks}, "samples": samples,
            "version": version("lmms-eval")}


def write_outputs(cfg: EvalConfig, report: Report) -> str:
    """eval.json, eval.md and config.yaml under output_dir; returns the markdown."""
    os.makedirs(cfg.output_dir, exist_ok=True)
    report = {**report, "config": config_dict(cfg)}
    markdown = render_markdown(report)
    for name, text in ((EVAL_JSON, json.dumps(report, indent=1)), (EVAL_MD, markdown)):
        with open(os.path.join(cfg.output_dir, name + ".tmp"), "w") as f:
            f.write(text)
        os.replace(os.path.join(cfg.output_dir, name + ".tmp"), os.path.join(cfg.output_dir, name))
    dump_resolved(cfg, os.path.join(cfg.output_dir, "config.yaml"))
    return markdown
