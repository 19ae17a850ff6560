"""PAD's own export format, its writer and its reader together (`RUN/export/`).

The folder (written for every projector kind, the only one for `c_abstractor`): `projector.safetensors` (the
plain projector keys plus metadata, kind and sizes, so `load_projector` rebuilds the module without the
training config), `pad_export.json` (stage, vision tower, select layer, image aspect, template, the LLM it was
trained with) and, after stage 2, `llm/` (the trained LLM's `save_pretrained` folder with its tokenizer);
stage 1 adds LLaVA's `mm_projector.bin` (+ `config.json`, see `trainer.export.llava`) for the kinds LLaVA has.
`export_pad(vlm, spec, out_dir)` writes it; `read_pad_export(folder)` reads it back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from pad_pipeline.core.errors import PadError
from trainer.export.check import check_stage1_export
from trainer.export.llava import LLAVA_PREFIX, VISION_DIR, config_for, llava_state_dict, vision_tower_for, write_config
from trainer.export.spec import DTYPES, LLAVA_KINDS, ExportSpec, sub_state, vision_and_llm
from trainer.models.projectors import build_projector, input_tokens
from trainer.run_layout import LLAVA_PROJECTOR_FILE, PROJECTOR_FILE

if TYPE_CHECKING:
    from trainer.models.loading import LoadedVLM

PAD_EXPORT_FILE = "pad_export.json"
LLM_DIR = "llm"


def export_projector(state: dict[str, torch.Tensor], out_dir: str, metadata: dict[str, int | str],
                     dtype: str = "bfloat16", llava: bool = True) -> dict[str, str]:
    """Write `projector.safetensors` (and, with `llava`, `mm_projector.bin` for LLaVA's kinds) under `out_dir`."""
    os.makedirs(out_dir, exist_ok=True)
    cast = DTYPES[dtype]
    paths = {"safetensors": os.path.join(out_dir, PROJECTOR_FILE)}
    if llava and metadata["kind"] in LLAVA_KINDS:
        paths["mm_projector"] = os.path.join(out_dir, LLAVA_PROJECTOR_FILE)
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


def export_pad(vlm: LoadedVLM, spec: ExportSpec, out_dir: str, state: dict[str, torch.Tensor] | None = None,
               final_dir: str | None = None) -> dict[str, str]:
    """PAD's own format into `out_dir` (`final_dir`: where it will live, if renamed); returns the paths written."""
    state = vlm.model.state_dict() if state is None else state
    meta = projector_meta_of(vlm, spec)
    # Stage 2's projector belongs with its LLM: no lone mm_projector.bin that could be mistaken for stage 1's.
    paths = export_projector(sub_state(state, "projector."), out_dir, meta, spec.dtype, llava=spec.stage == 1)
    llm = vision_and_llm(vlm)[1]
    if spec.stage == 1 and spec.model.projector.kind in LLAVA_KINDS and llm.config.model_type == "llama":
        tower, tower_state = vision_tower_for(vlm, spec, out_dir, final_dir or out_dir)
        paths["config"] = write_config(out_dir, config_for(vlm, spec, tower))
        projector = {k: v.to(DTYPES[spec.dtype]) for k, v in sub_state(state, "projector.").items()}
        check_stage1_export(out_dir, projector, LLAVA_PREFIX, os.path.join(out_dir, VISION_DIR), tower_state)
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


def projector_meta_of(vlm: LoadedVLM, spec: ExportSpec) -> dict[str, int | str]:
    (vision, llm), p = vision_and_llm(vlm), spec.model.projector
    return projector_metadata(p.kind, vision.config.hidden_size, llm.config.hidden_size, p.num_tokens, p.depth,
                              p.hidden_size, input_tokens(vlm.vision_grid, spec.model.vision.drop_cls))
