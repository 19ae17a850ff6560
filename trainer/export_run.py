"""The exports of a run: written at the end of each stage, and again from any checkpoint by `pad export`.

- `export_stage1(cfg, vlm, projector_state)`, stage 1's hook (`trainer.loop`): `RUN/export/` in PAD's format
  (`projector.safetensors`, `pad_export.json`) plus, for `linear` / `mlp2x_gelu`, LLaVA's `mm_projector.bin`
  and the `config.json` LLaVA's pretraining writes beside it.
- `export_stage2(cfg, vlm)`, stage 2's hook (`pad sft`): `RUN/export/` (PAD's format with the trained `llm/`)
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
import yaml
from safetensors.torch import load_file

from pad_pipeline.core.errors import PadError
from trainer import checkpoint as ckpt
from trainer.export import (
    DTYPES,
    LLAVA_KINDS,
    LLM_DIR,
    PROJECTOR_FILE,
    ExportSpec,
    export_projector,
    projector_meta_of,
    require_llava_kind,
    staged_folder,
    sub_state,
    vision_and_llm,
    write_pad_info,
)
from trainer.models.loading import LoadedVLM

FORMATS = ("hf", "llava", "pad")
FOLDERS = {"pad": "export", "hf": "export-hf", "llava": "export-llava"}


def spec_for(cfg: Any, stage: int) -> ExportSpec:
    """The export settings of a pretrain (stage 1) or sft (stage 2) config."""
    template = getattr(cfg.data, "template", None) or "plain"
    return ExportSpec(stage=stage, model=cfg.model, image_aspect=cfg.data.image_aspect,
                      max_length=cfg.model.llm.max_length, dtype=cfg.export.dtype, template=template)


def chat_template(name: str) -> str | None:
    """The Jinja chat template of a conversation template of `trainer.templates`."""
    from trainer.templates import get_template

    return get_template(name).chat_template


def export_pad(vlm: LoadedVLM, spec: ExportSpec, out_dir: str,
               state: dict[str, torch.Tensor] | None = None) -> dict[str, str]:
    """PAD's own format into `out_dir` (see `trainer.export`); returns the paths written."""
    from trainer.export_llava import config_for, write_config

    state = vlm.model.state_dict() if state is None else state
    meta = projector_meta_of(vlm, spec)
    # Stage 2's projector belongs with its LLM: no lone mm_projector.bin that could be mistaken for stage 1's.
    paths = export_projector(sub_state(state, "projector."), out_dir, meta, spec.dtype, llava=spec.stage == 1)
    llm = vision_and_llm(vlm)[1]
    if spec.stage == 1 and spec.model.projector.kind in LLAVA_KINDS and llm.config.model_type == "llama":
        paths["config"] = write_config(out_dir, config_for(vlm, spec))
    if spec.stage == 2:
        cast = DTYPES[spec.dtype]
        llm_dir = os.path.join(out_dir, LLM_DIR)
        llm.save_pretrained(llm_dir, state_dict={k: v.to(cast) for k, v in sub_state(state, "llm.").items()})
        vlm.tokenizer.save_pretrained(llm_dir)
        paths["llm"] = llm_dir
    info = {"stage": spec.stage, "projector": meta, "model": spec.model.model_dump(mode="json"),
            "image_aspect": spec.image_aspect, "template": spec.template, "max_length": spec.max_length,
            "dtype": spec.dtype}
    paths["pad_export"] = write_pad_info(out_dir, info)
    return paths


def write_format(fmt: str, vlm: LoadedVLM, spec: ExportSpec, out_dir: str,
                 state: dict[str, torch.Tensor] | None = None) -> dict[str, str]:
    """One export format into `out_dir` (staged, then renamed); the paths written, under `out_dir`."""
    if fmt != "pad":
        require_llava_kind(spec.model.projector.kind, "transformers" if fmt == "hf" else "LLaVA")
    with staged_folder(out_dir) as tmp:
        if fmt == "pad":
            paths = export_pad(vlm, spec, tmp, state)
        elif fmt == "hf":
            from trainer.export_hf import export_hf

            paths = export_hf(vlm, spec, tmp, chat_template(spec.template), state)
        else:
            from trainer.export_llava import export_llava

            paths = export_llava(vlm, spec, tmp, state, final_dir=out_dir)
    return {k: out_dir + v[len(tmp):] if v.startswith(tmp) else v for k, v in paths.items()}


def export_stage1(cfg: Any, vlm: LoadedVLM, projector_state: dict[str, torch.Tensor]) -> dict[str, str]:
    """Stage 1's end-of-run export: `RUN/export/` (PAD's format + LLaVA's stage-1 files)."""
    state = {"projector." + k: v for k, v in projector_state.items()}
    return write_format("pad", vlm, spec_for(cfg, 1), os.path.join(cfg.train.output_dir, FOLDERS["pad"]), state)


def export_stage2(cfg: Any, vlm: LoadedVLM) -> dict[str, str]:
    """Stage 2's end-of-run exports: PAD's format, then each of `cfg.export.formats` the projector allows."""
    spec, run = spec_for(cfg, 2), cfg.train.output_dir
    state = vlm.model.state_dict()
    out = {"pad": os.path.join(run, FOLDERS["pad"])}
    write_format("pad", vlm, spec, out["pad"], state)
    formats = [f for f in cfg.export.formats if f != "pad"]
    if formats and spec.model.projector.kind not in LLAVA_KINDS:
        print(f"pad sft: export {', '.join(formats)} refused: {spec.model.projector.kind} has no class in "
              f"transformers or LLaVA; PAD's format is in {out['pad']}", file=sys.stderr)
        return out
    for fmt in formats:
        out[fmt] = os.path.join(run, FOLDERS[fmt])
        write_format(fmt, vlm, spec, out[fmt], state)
    return out


def read_run_config(run_dir: str) -> tuple[Any, int]:
    """(the resolved config of RUN, its stage): a `pad sft` config has `data.template`."""
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(path):
        raise PadError(f"{run_dir}: no config.yaml; not the output_dir of a `pad pretrain` or `pad sft` run")
    with open(path) as f:
        raw = yaml.safe_load(f) or {}
    if "template" in (raw.get("data") or {}):
        from trainer.sft_weights import run_config

        return run_config(run_dir), 2
    from trainer.config import load_pretrain_config

    return load_pretrain_config(path), 1


def find_checkpoint(run_dir: str, name: str | None) -> str:
    """The complete checkpoint `name` (`step-N`, `N` or a folder) of RUN, or its newest one."""
    complete = ckpt.complete_checkpoints(run_dir)
    if name is None:
        if not complete:
            raise PadError(f"{run_dir}: no complete checkpoint to export (train first, or resume the run)")
        return complete[-1]
    digits = os.path.basename(name.rstrip("/")).removeprefix("step-")
    if not digits.isdigit():
        raise PadError(f"--checkpoint {name!r}: expected step-N or N (complete ones: "
                       f"{', '.join(os.path.basename(c) for c in complete) or 'none'})")
    wanted = os.path.join(ckpt.checkpoints_dir(run_dir), ckpt.checkpoint_name(int(digits)))
    if wanted not in complete:
        raise PadError(f"--checkpoint {name!r}: {wanted} is not a complete checkpoint (complete ones: "
                       f"{', '.join(os.path.basename(c) for c in complete) or 'none'})")
    return wanted


def checkpoint_projector(step_dir: str) -> dict[str, torch.Tensor]:
    """A checkpoint's projector weights: its `projector.safetensors`, else merged from DeepSpeed's partitions."""
    path = os.path.join(step_dir, PROJECTOR_FILE)
    if os.path.isfile(path):
        return load_file(path)
    from trainer.engine import consolidated_state_dict

    return sub_state(consolidated_state_dict(step_dir), "projector.")


def _stage1_vlm(cfg: Any, step_dir: str) -> LoadedVLM:
    from trainer.models.loading import build_vlm

    model = cfg.model.model_copy(deep=True)
    model.llm.gradient_checkpointing = False
    vlm = build_vlm(model, torch.float32, seed=cfg.train.seed)
    try:
        vlm.model.projector.load_state_dict({k: v.float() for k, v in checkpoint_projector(step_dir).items()})
    except RuntimeError as e:
        raise PadError(f"{step_dir}: its projector does not fit the run's model ({str(e).splitlines()[0]})") from None
    return vlm


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
        vlm = _stage1_vlm(cfg, step_dir)
    else:
        from trainer.sft_weights import load_trained_vlm

        vlm = load_trained_vlm(run_dir, checkpoint=step_dir, dtype=torch.float32)[0]
    vlm.model.eval()
    suffix = "" if checkpoint is None else "-" + os.path.basename(step_dir)
    out_dir = out or os.path.join(run_dir, FOLDERS[fmt] + suffix)
    spec = spec_for(cfg, stage)
    write_format(fmt, vlm, spec if dtype is None else dataclasses.replace(spec, dtype=dtype), out_dir)
    return out_dir, step_dir
