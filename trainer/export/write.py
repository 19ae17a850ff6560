"""The exports of a run: written at the end of each stage, and again from any checkpoint by `pad export`.

Both stages export the same way: the driver (`trainer.training.driver`) calls `write_exports(cfg)` once training
returned, and it rebuilds the model from the run's final checkpoint on the CPU.
- `export_stage1(cfg, vlm, projector_state)`, `pad pretrain`'s: `RUN/export/` in PAD's format
  (`projector.safetensors`, `pad_export.json`) plus, for `linear` / `mlp2x_gelu`, LLaVA's `mm_projector.bin`
  and the `config.json` LLaVA's pretraining writes beside it.
- `export_stage2(cfg, vlm)`, `pad sft`'s: `RUN/export/` (PAD's format with the trained `llm/`)
  and each of `export.formats`: `RUN/export-hf/` (transformers Llava) and `RUN/export-llava/` (LLaVA's own);
  a `c_abstractor` run gets one line saying those are refused (no class in either) and PAD's format only.
- `run_export(RUN, fmt, checkpoint, out)`, `pad export`: reads `RUN/config.yaml` and a complete checkpoint
  (the newest by default), rebuilds the model on the CPU and writes one format. A stage-1 run exports the
  base LLM with the trained projector. Every folder is written as `OUT.partial/` and then renamed.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any

import torch

from pad_pipeline.core.errors import PadError
from trainer.export.formats import FORMATS
from trainer.export.from_run import find_checkpoint, read_run_config, stage1_vlm
from trainer.export.pad_format import export_pad
from trainer.export.spec import (
    DTYPES,
    LLAVA_KINDS,
    ExportSpec,
    require_llava_kind,
    staged_folder,
)
from trainer.models.loading import LoadedVLM
from trainer.run_layout import RunLayout


def spec_for(cfg: Any, stage: int) -> ExportSpec:
    """The export settings of a pretrain (stage 1) or sft (stage 2) config."""
    template = getattr(cfg.data, "template", None) or "plain"
    return ExportSpec(stage=stage, model=cfg.model, image_aspect=cfg.data.image_aspect,
                      max_length=cfg.model.llm.max_length, dtype=cfg.export.dtype, template=template)


def chat_template(name: str) -> str | None:
    """The Jinja chat template of a conversation template of `trainer.data.chat.templates`."""
    from trainer.data.chat.jinja import jinja_for
    from trainer.data.chat.templates import get_template

    return jinja_for(get_template(name))


def write_format(fmt: str, vlm: LoadedVLM, spec: ExportSpec, out_dir: str,
                 state: dict[str, torch.Tensor] | None = None) -> dict[str, str]:
    """One export format into `out_dir` (staged, then renamed); the paths written, under `out_dir`."""
    if fmt != "pad":
        require_llava_kind(spec.model.projector.kind, "transformers" if fmt == "hf" else "LLaVA")
    with staged_folder(out_dir) as tmp:
        if fmt == "pad":
            paths = export_pad(vlm, spec, tmp, state, final_dir=out_dir)
        elif fmt == "hf":
            from trainer.export.hf import export_hf
            from trainer.export.hf_chat import exported_chat_template

            paths = export_hf(vlm, spec, tmp, exported_chat_template(spec.template, vlm.tokenizer), state)
        else:
            from trainer.export.llava import export_llava

            paths = export_llava(vlm, spec, tmp, state, final_dir=out_dir)
    return {k: out_dir + v[len(tmp):] if v.startswith(tmp) else v for k, v in paths.items()}


def export_stage1(cfg: Any, vlm: LoadedVLM, projector_state: dict[str, torch.Tensor]) -> dict[str, str]:
    """Stage 1's end-of-run export: `RUN/export/` (PAD's format + LLaVA's stage-1 files)."""
    state = {"projector." + k: v for k, v in projector_state.items()}
    return write_format("pad", vlm, spec_for(cfg, 1), RunLayout(cfg.train.output_dir).export("pad"), state)


def export_stage2(cfg: Any, vlm: LoadedVLM) -> dict[str, str]:
    """Stage 2's end-of-run exports: PAD's format, then each of `cfg.export.formats` the projector allows."""
    spec, run = spec_for(cfg, 2), cfg.train.output_dir
    state = vlm.model.state_dict()
    out = {"pad": RunLayout(run).export("pad")}
    write_format("pad", vlm, spec, out["pad"], state)
    formats = [f for f in cfg.export.formats if f != "pad"]
    if formats and spec.model.projector.kind not in LLAVA_KINDS:
        print(f"pad sft: export {', '.join(formats)} refused: {spec.model.projector.kind} has no class in "
              f"transformers or LLaVA; PAD's format is in {out['pad']}", file=sys.stderr)
        return out
    for fmt in formats:
        out[fmt] = RunLayout(run).export(fmt)
        write_format(fmt, vlm, spec, out[fmt], state)
    return out


def run_export(run_dir: str, fmt: str, checkpoint: str | None = None, out: str | None = None,
               dtype: str | None = None) -> tuple[str, str]:
    """`pad export`: one format from a checkpoint of RUN (`dtype`: instead of the run's export.dtype);
    returns (folder written, checkpoint used)."""
    if fmt not in FORMATS:
        raise PadError(f"--format {fmt!r}: one of {', '.join(FORMATS)}")
    if dtype is not None and dtype not in DTYPES:
        raise PadError(f"--dtype {dtype!r}: one of {', '.join(DTYPES)}")
    cfg, stage = read_run_config(run_dir)
    if fmt != "pad":  # refused before any weights load
        require_llava_kind(cfg.model.projector.kind, "transformers" if fmt == "hf" else "LLaVA")
    step_dir = find_checkpoint(run_dir, checkpoint)
    if stage == 1:
        vlm = stage1_vlm(cfg, step_dir)
    else:
        from trainer.export.from_run import load_trained_vlm

        vlm = load_trained_vlm(run_dir, checkpoint=step_dir, dtype=torch.float32)[0]
    vlm.model.eval()
    suffix = "" if checkpoint is None else "-" + os.path.basename(step_dir)
    out_dir = out or RunLayout(run_dir).export(fmt) + suffix
    spec = spec_for(cfg, stage)
    write_format(fmt, vlm, spec if dtype is None else dataclasses.replace(spec, dtype=dtype), out_dir)
    return out_dir, step_dir


def write_exports(cfg: Any, stage: int) -> int:
    """The end-of-run exports of a `pad pretrain` (stage 1) or `pad sft` (stage 2) run, from its final checkpoint:
    0 when they were written, 1 when one failed (the checkpoints stay, and `pad export` can retry)."""
    from trainer.export.from_run import load_trained_vlm
    from trainer.training.checkpoint import latest_checkpoint

    run = cfg.train.output_dir
    command = "pad sft" if stage == 2 else "pad pretrain"
    try:
        if stage == 2:
            written = export_stage2(cfg, load_trained_vlm(run)[0])
        else:
            latest = latest_checkpoint(run)
            if latest is None:
                raise PadError(f"{run}: no complete checkpoint")
            vlm = stage1_vlm(cfg, latest)
            written = export_stage1(cfg, vlm, vlm.model.projector.state_dict())
    except PadError as e:
        print(f"{command}: error: export failed ({e}); retry with `pad export {run} --format "
              f"{'hf|llava|pad' if stage == 2 else 'pad'}`", file=sys.stderr)
        return 1
    for fmt, path in written.items():
        print(f"{command}: {fmt} export written to {path}", file=sys.stderr)
    return 0
