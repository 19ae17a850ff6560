"""PAD's own export format, and the projector files every export shares.

`llava_state_dict(projector)` prefixes the projector's keys with `model.mm_projector.` (LLaVA's names:
`model.mm_projector.0.weight` ... for mlp2x_gelu, `model.mm_projector.weight` for linear), which
LLaVA's `--pretrain_mm_mlp_adapter` loads. `projector.safetensors` keeps the plain keys plus metadata
(kind and sizes) so `load_projector` can rebuild the module without the training config.

PAD's format (`RUN/export/`, written for every projector kind, the only one for `c_abstractor`):
`projector.safetensors`, `pad_export.json` (stage, vision tower, select layer, image aspect, template,
the LLM it was trained with) and, after stage 2, `llm/` (the trained LLM's `save_pretrained` folder with
its tokenizer); stage 1 adds LLaVA's `mm_projector.bin` (+ `config.json`, see `export_llava`) for the
kinds LLaVA has. `read_pad_export(folder)` is what `pad sft` (as its init) and `pad analyze` read.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, cast

import torch
from safetensors.torch import load_file, safe_open, save_file
from torch import nn
from transformers import PreTrainedModel

from pad_pipeline.core.errors import PadError
from trainer.config import ModelConfig
from trainer.models.projectors import build_projector

if TYPE_CHECKING:
    from trainer.models.loading import LoadedVLM

LLAVA_PREFIX = "model.mm_projector."
LLAVA_KINDS = ("linear", "mlp2x_gelu")  # the projector kinds LLaVA and transformers' Llava have
PAD_EXPORT_FILE = "pad_export.json"
PROJECTOR_FILE = "projector.safetensors"
LLM_DIR = "llm"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def llava_state_dict(state: dict[str, torch.Tensor], dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Projector state dict -> LLaVA's `mm_projector.bin` keys (optionally cast)."""
    return {LLAVA_PREFIX + k: (v.to(dtype) if dtype is not None else v) for k, v in state.items()}


def export_projector(state: dict[str, torch.Tensor], out_dir: str, metadata: dict[str, int | str],
                     dtype: str = "bfloat16", llava: bool = True) -> dict[str, str]:
    """Write `projector.safetensors` (and, with `llava`, `mm_projector.bin` for LLaVA's kinds) under `out_dir`."""
    os.makedirs(out_dir, exist_ok=True)
    cast = DTYPES[dtype]
    paths = {"safetensors": os.path.join(out_dir, PROJECTOR_FILE)}
    if llava and metadata["kind"] in LLAVA_KINDS:
        paths["mm_projector"] = os.path.join(out_dir, "mm_projector.bin")
        torch.save(llava_state_dict(state, cast), paths["mm_projector"] + ".tmp")
        os.replace(paths["mm_projector"] + ".tmp", paths["mm_projector"])
    save_file({k: v.to(cast).contiguous() for k, v in state.items()}, paths["safetensors"] + ".tmp",
              metadata={"pad_projector": json.dumps(metadata)})
    os.replace(paths["safetensors"] + ".tmp", paths["safetensors"])
    return paths


def projector_metadata(kind: str, vision_dim: int, llm_dim: int, num_tokens: int, depth: int,
                       hidden_size: int | None, input_tokens: int) -> dict[str, int | str]:
    return {"kind": kind, "vision_dim": vision_dim, "llm_dim": llm_dim, "num_tokens": num_tokens,
            "depth": depth, "hidden_size": hidden_size or 0, "input_tokens": input_tokens}


def load_projector(path: str) -> nn.Module:
    """Rebuild a projector from `projector.safetensors` (weights + metadata), in float32."""
    with safe_open(path, framework="pt") as f:
        meta = json.loads(f.metadata()["pad_projector"])
    projector = build_projector(meta["kind"], meta["vision_dim"], meta["llm_dim"], num_tokens=meta["num_tokens"],
                                depth=meta["depth"], hidden_size=meta["hidden_size"] or None,
                                input_tokens=meta["input_tokens"])
    projector.load_state_dict({k: v.float() for k, v in load_file(path).items()})
    return projector


@contextmanager
def staged_folder(out_dir: str) -> Iterator[str]:
    """Write an export into `OUT.partial/`, then replace `OUT`: a failed export never looks finished."""
    partial = out_dir.rstrip("/") + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    yield partial
    shutil.rmtree(out_dir, ignore_errors=True)
    os.rename(partial, out_dir)


def write_pad_info(out_dir: str, info: dict[str, Any]) -> str:
    path = os.path.join(out_dir, PAD_EXPORT_FILE)
    with open(path, "w") as f:
        json.dump({"format": "pad", "format_version": 1, **info}, f, indent=1)
    return path


@dataclass
class PadExport:
    """A PAD export folder, read back: the projector (float32), the LLM folder (stage 2) and the info."""

    folder: str
    projector: nn.Module
    llm_dir: str | None
    info: dict[str, Any]

    @property
    def stage(self) -> int:
        return int(self.info["stage"])


def read_pad_export(folder: str) -> PadExport:
    """PAD's export format at `folder` (`RUN/export`); one-line errors for what is missing."""
    info_path, projector_path = os.path.join(folder, PAD_EXPORT_FILE), os.path.join(folder, PROJECTOR_FILE)
    if not os.path.isfile(projector_path):
        raise PadError(f"{folder}: no {PROJECTOR_FILE}; not a PAD export "
                       f"(write one with `pad export RUN --format pad`)")
    try:
        with open(info_path) as f:
            info = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise PadError(f"{info_path}: unreadable ({e}); rewrite it with `pad export RUN --format pad`") from None
    llm_dir = os.path.join(folder, LLM_DIR) if info.get("stage") == 2 else None
    if llm_dir is not None and not os.path.isfile(os.path.join(llm_dir, "config.json")):
        raise PadError(f"{folder}: a stage-2 export without {LLM_DIR}/config.json; rewrite it with `pad export`")
    return PadExport(folder, load_projector(projector_path).eval(), llm_dir, info)


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


def projector_meta_of(vlm: LoadedVLM, spec: ExportSpec) -> dict[str, int | str]:
    (vision, llm), p = vision_and_llm(vlm), spec.model.projector
    return projector_metadata(p.kind, vision.config.hidden_size, llm.config.hidden_size, p.num_tokens, p.depth,
                              p.hidden_size, vlm.vision_grid ** 2 + (0 if spec.model.vision.drop_cls else 1))


def sub_state(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of `state` under `prefix` (e.g. "projector."), with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def require_llava_kind(kind: str, fmt: str) -> None:
    """The one-line refusal for kinds LLaVA and transformers have no class for."""
    if kind not in LLAVA_KINDS:
        raise PadError(f"field 'model.projector.kind': {kind} has no class in {fmt}; "
                       f"only {' and '.join(LLAVA_KINDS)} export there (PAD's own format is in RUN/export)")
