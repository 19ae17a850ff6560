"""Loading transformers checkpoints for the wrappers, and the autocast they run under.

Real checkpoints (a hub id or a local folder) go through `from_pretrained(checkpoint, revision=...)`;
a failure becomes a one-line `PadError` naming the manifest field. Weights stay float32; on CUDA the
forward passes run under autocast in the manifest's `models.dtype`, so the same code runs fp32 on CPU.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, ContextManager

import torch

from pad_pipeline.core.errors import PadError

_AUTOCAST = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def load_pretrained(cls: Any, checkpoint: str, revision: str | None, field: str, **kwargs: Any) -> Any:
    """`cls.from_pretrained(checkpoint, revision=revision)`; errors name `field` and the checkpoint."""
    if checkpoint.startswith(("/", "./", "../", "~")) and not Path(checkpoint).expanduser().is_dir():
        raise PadError(f"field '{field}': {checkpoint} is not an existing checkpoint folder; give one, a hub id "
                       "(org/name) or tiny-random")
    try:
        return cls.from_pretrained(checkpoint, revision=revision, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PadError(f"field '{field}': cannot load {cls.__name__} from {checkpoint!r} "
                       f"(revision {revision or 'default'}): {first}") from exc


def load_text_image_model(model_cls: Any, image_processor_cls: Any, checkpoint: str, revision: str | None,
                          field: str) -> tuple[Any, Any, Any, str | None]:
    """Model, tokenizer and image processor of one checkpoint, and the revision they resolved to."""
    from transformers import AutoTokenizer

    model = load_pretrained(model_cls, checkpoint, revision, field)
    tokenizer = load_pretrained(AutoTokenizer, checkpoint, revision, field)
    processor = load_pretrained(image_processor_cls, checkpoint, revision, field)
    return model, tokenizer, processor, resolved_revision(model, revision)


def load_image_model(model_cls: Any, image_processor_cls: Any, checkpoint: str, revision: str | None,
                     field: str) -> tuple[Any, Any, str | None]:
    """Model and image processor of one checkpoint (no tokenizer), and the revision they resolved to."""
    model = load_pretrained(model_cls, checkpoint, revision, field)
    processor = load_pretrained(image_processor_cls, checkpoint, revision, field)
    return model, processor, resolved_revision(model, revision)


def resolved_revision(model: Any, revision: str | None) -> str | None:
    """The revision asked for, else the hub commit the files came from (None for local folders)."""
    return revision or getattr(model.config, "_commit_hash", None)


def autocast(device: torch.device, dtype: str) -> ContextManager[Any]:
    """bf16/fp16 autocast on CUDA when the manifest asks for it; a no-op elsewhere (CPU runs fp32)."""
    if device.type == "cuda" and dtype in _AUTOCAST:
        return torch.autocast("cuda", dtype=_AUTOCAST[dtype])
    return contextlib.nullcontext()


def hold_weights(model: Any, weights_dtype: str) -> Any:
    """`model` with its floating weights in `models.weights_dtype` (bfloat16: no autocast needed)."""
    return model.to(torch.bfloat16) if weights_dtype == "bfloat16" else model


def provenance(name: str, checkpoint: str, revision: str | None) -> dict[str, str | None]:
    return {"name": name, "checkpoint": checkpoint, "revision": revision}
