"""A run folder read back, without DeepSpeed (for exports and evaluation): its config, a checkpoint, the model.

`load_trained_vlm(run_dir, checkpoint=None, dtype)` reads the run's resolved `config.yaml` (an `SftConfig`),
builds the VLM as training did (vision tower from its checkpoint or `tiny-random`), and loads the trained
projector and LLM from a complete checkpoint (default: the newest, which is the final one):
`projector.safetensors` and `llm.safetensors`, written by `trainer.stages.sft` beside DeepSpeed's files.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from safetensors.torch import load_file

from pad_pipeline.core.config import build_config, read_yaml
from pad_pipeline.core.errors import PadError
from trainer.config.sft import SftConfig
from trainer.export.spec import sub_state
from trainer.models.loading import LoadedVLM, inference_vlm
from trainer.run_layout import CHECKPOINT_PREFIX, CONFIG_FILE, LLM_FILE, PROJECTOR_FILE, RunLayout
from trainer.training import checkpoint as checkpoints


def recorded_config(run_dir: str) -> dict[str, Any] | None:
    """RUN/config.yaml as written by the run (None when there is none): the one reader of that file."""
    path = RunLayout(run_dir).config
    return read_yaml(path) if os.path.isfile(path) else None


def run_config(run_dir: str) -> SftConfig:
    cfg, stage = read_run_config(run_dir)
    if stage != 2:
        raise PadError(f"{run_dir}: a `pad pretrain` run, not a `pad sft` output_dir")
    return cfg


def load_trained_vlm(run_dir: str, checkpoint: str | None = None,
                     dtype: torch.dtype = torch.float32) -> tuple[LoadedVLM, SftConfig]:
    """(the trained VLM in eval mode on the CPU, the run's config)."""
    cfg = run_config(run_dir)
    folder = checkpoint or checkpoints.latest_checkpoint(run_dir)
    if folder is None:
        raise PadError(f"{run_dir}: no complete checkpoint (the run has not saved one yet)")
    files = {"projector": os.path.join(folder, PROJECTOR_FILE), "llm": os.path.join(folder, LLM_FILE)}
    missing = [p for p in files.values() if not os.path.isfile(p)]
    if missing:
        raise PadError(f"{folder}: {os.path.basename(missing[0])} is missing (not a pad sft checkpoint?)")
    vlm = inference_vlm(cfg.model, dtype=dtype, seed=cfg.train.seed)
    vlm.model.projector.load_state_dict(load_file(files["projector"]))
    vlm.model.llm.load_state_dict(load_file(files["llm"]))
    vlm.model.to(dtype).eval()
    return vlm, cfg


def read_run_config(run_dir: str) -> tuple[Any, int]:
    """(the resolved config of RUN, its stage): a `pad sft` config has `data.template`."""
    raw = recorded_config(run_dir)
    if raw is None:
        raise PadError(f"{run_dir}: no {CONFIG_FILE}; not the output_dir of a `pad pretrain` or `pad sft` run")
    source = RunLayout(run_dir).config
    if "template" in (raw.get("data") or {}):
        return build_config(raw, SftConfig, source=source), 2
    from trainer.config.pretrain import PretrainConfig

    return build_config(raw, PretrainConfig, source=source), 1


def find_checkpoint(run_dir: str, name: str | None) -> str:
    """The complete checkpoint `name` (`step-N`, `N` or a folder) of RUN, or its newest one."""
    complete = checkpoints.complete_checkpoints(run_dir)
    if name is None:
        if not complete:
            raise PadError(f"{run_dir}: no complete checkpoint to export (train first, or resume the run)")
        return complete[-1]
    digits = os.path.basename(name.rstrip("/")).removeprefix(CHECKPOINT_PREFIX)
    if not digits.isdigit():
        raise PadError(f"--checkpoint {name!r}: expected step-N or N (complete ones: "
                       f"{', '.join(os.path.basename(c) for c in complete) or 'none'})")
    wanted = RunLayout(run_dir).checkpoint(int(digits))
    if wanted not in complete:
        raise PadError(f"--checkpoint {name!r}: {wanted} is not a complete checkpoint (complete ones: "
                       f"{', '.join(os.path.basename(c) for c in complete) or 'none'})")
    return wanted


def checkpoint_projector(step_dir: str) -> dict[str, torch.Tensor]:
    """A checkpoint's projector weights: its `projector.safetensors`, else merged from DeepSpeed's partitions."""
    path = os.path.join(step_dir, PROJECTOR_FILE)
    if os.path.isfile(path):
        return load_file(path)
    from trainer.training.engine import consolidated_state_dict

    return sub_state(consolidated_state_dict(step_dir), "projector.")


def stage1_vlm(cfg: Any, step_dir: str) -> LoadedVLM:
    vlm = inference_vlm(cfg.model, torch.float32, seed=cfg.train.seed)
    try:
        vlm.model.projector.load_state_dict({k: v.float() for k, v in checkpoint_projector(step_dir).items()})
    except RuntimeError as e:
        raise PadError(f"{step_dir}: its projector does not fit the run's model ({str(e).splitlines()[0]})") from None
    return vlm
