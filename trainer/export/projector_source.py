"""The one reader of a trained projector, from every place one lives: `pad sft`'s `init.projector` and the
projectors `pad analyze` compares both read through it.

- a run folder: its `export/projector.safetensors` (else its newest checkpoint's); a PAD export folder
  (`RUN/export`, trainer.export.pad_format): its `projector.safetensors`;
- a `.safetensors` file: ours carry their kind and sizes as metadata; others are inferred from the keys;
- a `.bin`/`.pt` file: LLaVA's `mm_projector.bin` (keys `model.mm_projector.*`), read with weights_only.
The result is checked against the loaded vision and LLM widths, so a projector from another model pair
fails with a one-line error naming the file instead of a shape error deep in a forward.
"""

from __future__ import annotations

import os

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from pad_pipeline.core.errors import PadError
from trainer.config.sections import ProjectorConfig
from trainer.export.llava import LLAVA_PREFIX
from trainer.export.pad_format import load_projector
from trainer.models.projectors import build_projector
from trainer.run_layout import PROJECTOR_FILE, RunLayout
from trainer.training import checkpoint


def run_projector_file(run_dir: str) -> str:
    """A run folder's (or a PAD export folder's) projector.safetensors."""
    for exported in (RunLayout(run_dir).exported_projector, os.path.join(run_dir, PROJECTOR_FILE)):
        if os.path.isfile(exported):
            return exported
    latest = checkpoint.latest_checkpoint(run_dir)
    if latest and os.path.isfile(os.path.join(latest, PROJECTOR_FILE)):
        return os.path.join(latest, PROJECTOR_FILE)
    raise PadError(f"{run_dir}: no export/projector.safetensors and no complete checkpoint with a projector")


def source_file(name: str, source: str) -> str:
    """The weights file of `source`: a run or export folder's projector, or the file itself."""
    if os.path.isdir(source):
        return run_projector_file(source)
    if not os.path.isfile(source):
        raise PadError(f"projector {name!r}: {source} does not exist")
    return source


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in (LLAVA_PREFIX, "mm_projector.", "projector."):
        if state and all(k.startswith(prefix) for k in state):
            return {k[len(prefix):]: v for k, v in state.items()}
    return state


def infer_kind(state: dict[str, torch.Tensor]) -> str | None:
    """linear / mlp2x_gelu from LLaVA-style keys; None when the keys say neither."""
    keys = set(state)
    if keys <= {"weight", "bias"} and "weight" in keys:
        return "linear"
    if keys <= {"0.weight", "0.bias", "2.weight", "2.bias"} and {"0.weight", "2.weight"} <= keys:
        return "mlp2x_gelu"
    return None


def _read_state(path: str) -> tuple[dict[str, torch.Tensor], bool]:
    """(state dict, has our metadata)."""
    try:
        if path.endswith(".safetensors"):
            with safe_open(path, framework="pt") as f:
                ours = "pad_projector" in (f.metadata() or {})
            return load_file(path), ours
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt or foreign files: say which one
        raise PadError(f"{path}: cannot read projector weights ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PadError(f"{path}: not a state dict of tensors")
    return state, False


def _from_state(path: str, state: dict[str, torch.Tensor], kind: str | None, vision_dim: int, llm_dim: int,
                p: ProjectorConfig, input_tokens: int) -> nn.Module:
    state = {k: v.float() for k, v in _strip_prefix(state).items()}
    kind = kind or infer_kind(state) or p.kind
    projector = build_projector(kind, vision_dim, llm_dim, num_tokens=p.num_tokens, depth=p.depth,
                                hidden_size=p.hidden_size, input_tokens=input_tokens)
    try:
        projector.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else str(e)
        raise PadError(f"{path}: does not fit a {kind} projector {vision_dim} -> {llm_dim} ({first})"
                       ) from None
    return projector


def check_widths(projector: nn.Module, name: str, vision_dim: int, llm_dim: int, input_tokens: int) -> None:
    """A dry forward: the projector must take [*, input_tokens, vision_dim] and give llm_dim."""
    try:
        with torch.no_grad():
            out = projector(torch.zeros(1, input_tokens, vision_dim))
    except (RuntimeError, ValueError) as e:
        raise PadError(f"projector {name!r}: does not take {vision_dim}-wide vision features "
                       f"({str(e).splitlines()[0]})") from None
    if out.shape[-1] != llm_dim:
        raise PadError(f"projector {name!r}: gives {out.shape[-1]}-wide tokens, the LLM embeds in {llm_dim}")


def read_projector(name: str, path: str, kind: str | None, model: ProjectorConfig, vision_dim: int, llm_dim: int,
                   input_tokens: int) -> nn.Module:
    """The projector in weights file `path` (see `source_file`), float32 in eval mode, checked against the widths;
    `kind` for a file without our metadata (default: inferred from its keys, else `model.kind`)."""
    state, ours = _read_state(path)
    if ours:
        projector = load_projector(path)
    else:
        projector = _from_state(path, state, kind, vision_dim, llm_dim, model, input_tokens)
    projector = projector.float().eval()
    check_widths(projector, name, vision_dim, llm_dim, input_tokens)
    return projector
