"""A trained stage-2 model back from a run folder, without DeepSpeed (for exports and evaluation).

`load_trained_vlm(run_dir, checkpoint=None, dtype)` reads the run's resolved `config.yaml` (an `SftConfig`),
builds the VLM as training did (vision tower from its checkpoint or `tiny-random`), and loads the trained
projector and LLM from a complete checkpoint (default: the newest, which is the final one):
`projector.safetensors` and `llm.safetensors`, written by `trainer.sft_stage` beside DeepSpeed's files.
"""

from __future__ import annotations

import os

import torch
from safetensors.torch import load_file

from pad_pipeline.core.config import load_config
from pad_pipeline.core.errors import PadError
from trainer import checkpoint as checkpoints
from trainer.models.loading import LoadedVLM, build_vlm
from trainer.sft_config import SftConfig


def run_config(run_dir: str) -> SftConfig:
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(path):
        raise PadError(f"{run_dir}: no config.yaml (is it a `pad sft` output_dir?)")
    return load_config(path, [], SftConfig)


def load_trained_vlm(run_dir: str, checkpoint: str | None = None,
                     dtype: torch.dtype = torch.float32) -> tuple[LoadedVLM, SftConfig]:
    """(the trained VLM in eval mode on the CPU, the run's config)."""
    cfg = run_config(run_dir)
    folder = checkpoint or checkpoints.latest_checkpoint(run_dir)
    if folder is None:
        raise PadError(f"{run_dir}: no complete checkpoint (the run has not saved one yet)")
    files = {name: os.path.join(folder, f"{name}.safetensors") for name in ("projector", "llm")}
    missing = [p for p in files.values() if not os.path.isfile(p)]
    if missing:
        raise PadError(f"{folder}: {os.path.basename(missing[0])} is missing (not a pad sft checkpoint?)")
    model_cfg = cfg.model.model_copy(deep=True)
    model_cfg.llm.gradient_checkpointing = False
    vlm = build_vlm(model_cfg, dtype=dtype, seed=cfg.train.seed)
    vlm.model.projector.load_state_dict(load_file(files["projector"]))
    vlm.model.llm.load_state_dict(load_file(files["llm"]))
    vlm.model.to(dtype).eval()
    return vlm, cfg
