"""`pad sft MANIFEST [--set k=v] [--resume] [--check]`: stage-2 instruction tuning (LLaVA-1.5's finetune).

`run` validates the manifest and the output folder up front, indexes the conversation JSON once beside the run
(`RUN/data-index.parquet`, reused while the JSON is unchanged; every entry checked as `--check` does, tokenizer
included, so bad samples are known before training) and refuses to start on bad entries unless
`data.on_bad_sample: skip` (then they are counted and listed in `RUN/skipped-samples.jsonl`), hands the run
to `trainer.launch` (one process or Ray Train workers, ZeRO-3), and finally writes the exports of
`export.formats` from the final checkpoint (`trainer.sft_exports`). `--check` only lists every bad sample by
id (`trainer.data.sft_check`) and exits 1 when training would refuse the data.
"""

from __future__ import annotations

import json
import os
import sys

from pad_pipeline.core.errors import PadError
from trainer.sft_config import SftConfig, load_sft_config


def _log(message: str) -> None:
    print(f"pad sft: {message}", file=sys.stderr)


def _reasons(bad: list) -> str:
    counts: dict[str, int] = {}
    for b in bad:
        counts[b.reason] = counts.get(b.reason, 0) + 1
    return ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))


def check(cfg: SftConfig) -> int:
    from trainer.data.sft_check import check_data

    report = check_data(cfg)
    for b in report.bad:
        print(b.line())
    _log(f"checked {report.entries} entries of {cfg.data.path} in {report.seconds:.1f}s "
         f"({report.seconds_per_100k():.1f}s per 100K): {len(report.bad)} bad"
         + (f" ({_reasons(report.bad)})" if report.bad else ""))
    return 1 if report.bad and cfg.data.on_bad_sample == "error" else 0


def prepare_index(cfg: SftConfig, resume_from: str | None) -> int:
    """Build (or reuse) the run's index, every entry checked (tokenizer included); returns the number of
    trainable entries. A resumed run must read the data its checkpoint was trained on."""
    from trainer import checkpoint
    from trainer.data.conversation_index import build_index, fingerprint, index_matches, load_index
    from trainer.data.sft_check import TokenChecker
    from trainer.sft_stage import index_path

    path = index_path(cfg)
    if resume_from is not None:
        trained_on = checkpoint.read_state(resume_from).get("plan", {}).get("fingerprint")
        if trained_on != fingerprint(cfg.data.path):
            raise PadError(f"{cfg.data.path}: changed since {resume_from} was written; resume needs the same data")
    checks = {"template": cfg.data.template, "max_length": cfg.model.llm.max_length, "image_folder":
              cfg.data.image_folder, "check_images": cfg.data.check_images,
              "model": cfg.model.model_dump(mode="json", include={"vision", "llm", "projector"})}
    if index_matches(path, cfg.data.path, checks):
        return int(load_index(path).valid.sum())
    checker = TokenChecker.for_config(cfg)  # a template the tokenizer cannot express fails here, in seconds
    summary = build_index(cfg.data.path, cfg.data.image_folder, path, checker.template.control,
                          cfg.data.check_images, checker, checks)
    good = summary.entries - len(summary.bad)
    _log(f"indexed {summary.entries} entries of {cfg.data.path} in {summary.seconds:.1f}s -> {path}")
    if summary.bad:
        first = summary.bad[0]
        if cfg.data.on_bad_sample == "error":
            os.remove(path)
            raise PadError(f"{cfg.data.path}: {len(summary.bad)} bad entries ({_reasons(summary.bad)}), first "
                           f"{first.id}: {first.reason} ({first.detail}); list them with `pad sft MANIFEST --check` "
                           f"or set data.on_bad_sample: skip")
        with open(os.path.join(cfg.train.output_dir, "skipped-samples.jsonl"), "w") as f:
            for b in summary.bad:
                f.write(json.dumps({"id": b.id, "reason": b.reason, "detail": b.detail}) + "\n")
        _log(f"skipping {len(summary.bad)} bad entries ({_reasons(summary.bad)}); listed in skipped-samples.jsonl")
    if not good:
        raise PadError(f"{cfg.data.path}: no entry to train on")
    return good


def run(manifest: str, overrides: list[str], resume: bool = False, check_only: bool = False) -> int:
    cfg = load_sft_config(manifest, overrides)
    if check_only:
        return check(cfg)
    # Imported once the manifest validates, so a bad one fails in well under two seconds (no torch yet).
    from trainer import checkpoint
    from trainer.launch import launch, resolve_mode
    from trainer.sft_exports import write_exports

    latest = checkpoint.latest_checkpoint(cfg.train.output_dir)
    if resume and latest is None:
        raise PadError(f"{cfg.train.output_dir}: no complete checkpoint to resume from (drop --resume)")
    if not resume and latest is not None:
        raise PadError(f"{cfg.train.output_dir}: holds checkpoints; pass --resume or set train.output_dir")
    source = cfg.init.projector
    if source and "://" not in source and not os.path.exists(source):
        raise PadError(f"field 'init.projector': {source} does not exist (run `pad pretrain` first, or point it at "
                       f"a run folder, projector.safetensors or mm_projector.bin)")
    os.makedirs(cfg.train.output_dir, exist_ok=True)
    good = prepare_index(cfg, latest if resume else None)
    _log(f"{good} conversations, template {cfg.data.template}; {resolve_mode(cfg)} launch, "
         f"{cfg.launch.num_workers} worker(s)")
    summary = launch(cfg, resume)
    _log(f"done, {summary.get('steps')} steps; checkpoints in {checkpoint.checkpoints_dir(cfg.train.output_dir)}")
    return write_exports(cfg)
