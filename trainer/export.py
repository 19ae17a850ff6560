"""Exporting a trained projector: LLaVA's `mm_projector.bin` and a self-describing safetensors file.

`llava_state_dict(projector)` prefixes the projector's keys with `model.mm_projector.` (LLaVA's names:
`model.mm_projector.0.weight` ... for mlp2x_gelu, `model.mm_projector.weight` for linear), which
LLaVA's `--pretrain_mm_mlp_adapter` loads. `projector.safetensors` keeps the plain keys plus metadata
(kind and sizes) so `load_projector` can rebuild the module without the training config.
"""

from __future__ import annotations

import json
import os

import torch
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from trainer.models.projectors import build_projector

LLAVA_PREFIX = "model.mm_projector."
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def llava_state_dict(state: dict[str, torch.Tensor], dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Projector state dict -> LLaVA's `mm_projector.bin` keys (optionally cast)."""
    return {LLAVA_PREFIX + k: (v.to(dtype) if dtype is not None else v) for k, v in state.items()}


def export_projector(state: dict[str, torch.Tensor], out_dir: str, metadata: dict[str, int | str],
                     dtype: str = "bfloat16") -> dict[str, str]:
    """Write `mm_projector.bin` and `projector.safetensors` under `out_dir`; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    cast = _DTYPES[dtype]
    bin_path = os.path.join(out_dir, "mm_projector.bin")
    st_path = os.path.join(out_dir, "projector.safetensors")
    torch.save(llava_state_dict(state, cast), bin_path + ".tmp")
    os.replace(bin_path + ".tmp", bin_path)
    save_file({k: v.to(cast).contiguous() for k, v in state.items()}, st_path + ".tmp",
              metadata={"pad_projector": json.dumps(metadata)})
    os.replace(st_path + ".tmp", st_path)
    return {"mm_projector": bin_path, "safetensors": st_path}


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
