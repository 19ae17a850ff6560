"""What every export format shares: the export settings of a run (`ExportSpec`), the dtypes, the projector kinds
LLaVA and transformers have a class for, and small helpers (state-dict slices, a staged output folder).

`trainer.export.pad_format`, `trainer.export.hf` and `trainer.export.llava` build on it.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, cast

import torch
from transformers import PreTrainedModel

from pad_pipeline.core.errors import PadError
from trainer.config.sections import ModelConfig
from trainer.export.formats import DTYPE_NAMES

if TYPE_CHECKING:
    from trainer.models.loading import LoadedVLM


LLAVA_KINDS = ("linear", "mlp2x_gelu")  # the projector kinds LLaVA and transformers' Llava have


DTYPES: dict[str, torch.dtype] = {name: getattr(torch, name) for name in DTYPE_NAMES}


@contextmanager
def staged_folder(out_dir: str) -> Iterator[str]:
    """Write an export into `OUT.partial/`, then replace `OUT`: a failed export never looks finished."""
    partial = out_dir.rstrip("/") + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # a refused or failed export leaves nothing behind
        raise
    shutil.rmtree(out_dir, ignore_errors=True)
    os.rename(partial, out_dir)


@dataclass(frozen=True)
class ExportSpec:
    """What every export format needs from the run's manifest besides the weights."""

    stage: int            # 1: the base LLM with the trained projector; 2: the trained LLM
    model: ModelConfig    # vision tower, LLM and projector settings of the run
    image_aspect: str     # "crop" (CLIP's resize + centre crop) or "pad" (LLaVA's expand-to-square)
    max_length: int       # tokens per sample the run trained with
    dtype: str            # export dtype: float32 | float16 | bfloat16
    template: str         # conversation template of the run ("plain" for stage 1)


def vision_and_llm(vlm: LoadedVLM) -> tuple[PreTrainedModel, PreTrainedModel]:
    """The VLM's vision tower and LLM, typed as the transformers models they are."""
    return cast(PreTrainedModel, vlm.model.vision), cast(PreTrainedModel, vlm.model.llm)


def sub_state(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of `state` under `prefix` (e.g. "projector."), with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def require_llava_kind(kind: str, fmt: str) -> None:
    """The one-line refusal for kinds LLaVA and transformers have no class for."""
    if kind not in LLAVA_KINDS:
        raise PadError(f"field 'model.projector.kind': {kind} has no class in {fmt}; "
                       f"only {' and '.join(LLAVA_KINDS)} export there (PAD's own format is in RUN/export)")
