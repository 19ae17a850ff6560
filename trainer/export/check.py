"""Loud on partial loads: every export is re-opened with the installed transformers before it is published.

`pad export` (and the end-of-stage exports) write into `OUT.partial/`; these checks run on that folder and
raise a one-line `PadError` when a loader would leave a weight missing, drop one as unexpected, find one of
another shape, or hold a value other than the one written (what "newly initialised" looks like after a
load that reported nothing). Only then is the folder renamed to `OUT`, so a refused export leaves nothing
that looks finished. The 7B case holds the export's weights twice in host memory for the length of the check.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from transformers import AutoTokenizer, CLIPVisionModel, LlamaForCausalLM, LlavaForConditionalGeneration
from transformers.utils import logging

from pad_pipeline.core.errors import PadError
from trainer.run_layout import LLAVA_PROJECTOR_FILE


@contextmanager
def _quiet() -> Iterator[None]:
    """The loaders' own reports stay silent: the check reads them and speaks in one line."""
    level, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # 4.x spellings (rope_scaling) read by 5.x
            yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def _load(cls: Any, folder: str) -> tuple[torch.nn.Module, dict[str, list]]:
    """`cls.from_pretrained(folder)` with its loading report (missing / unexpected / mismatched keys)."""
    with _quiet():
        model, info = cls.from_pretrained(folder, output_loading_info=True)
    return model, info


def _first(keys: list[str] | set[str]) -> str:
    keys = sorted(keys)
    return f"{len(keys)}, e.g. {keys[0]}"


def _refuse_partial(folder: str, loader: str, info: dict[str, list], allowed_unexpected: str | None = None) -> None:
    unexpected = [k for k in info.get("unexpected_keys", [])
                  if allowed_unexpected is None or not k.startswith(allowed_unexpected)]
    for what, keys in (("missing (would be newly initialised)", info.get("missing_keys", [])),
                       ("unexpected (ignored)", unexpected), ("of another shape", info.get("mismatched_keys", []))):
        if keys:
            names = [k if isinstance(k, str) else k[0] for k in keys]
            raise PadError(f"{folder}: {loader} finds weights {what}: {_first(names)}; export refused")


def _refuse_changed(folder: str, loader: str, loaded: dict[str, torch.Tensor],
                    written: dict[str, torch.Tensor]) -> None:
    absent = set(written) - set(loaded)
    if absent:
        raise PadError(f"{folder}: {loader} has no weight for {_first(absent)}; export refused")
    changed = [k for k, v in written.items() if not torch.equal(loaded[k].to(v.dtype), v)]
    if changed:
        raise PadError(f"{folder}: {loader} holds values other than the exported ones for {_first(changed)} "
                       f"(re-initialised on load); export refused")


def _tokenizer_loads(folder: str) -> None:
    try:
        with _quiet():
            AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, TypeError) as e:
        raise PadError(f"{folder}: its tokenizer does not load ({type(e).__name__}: "
                       f"{str(e).splitlines()[0] if str(e) else ''}); export refused") from None


def check_hf_export(folder: str, written: dict[str, torch.Tensor]) -> None:
    """`LlavaForConditionalGeneration.from_pretrained(folder)` loads exactly `written` (transformers-5 names)."""
    model, info = _load(LlavaForConditionalGeneration, folder)
    loader = "LlavaForConditionalGeneration.from_pretrained"
    _refuse_partial(folder, loader, info)
    _refuse_changed(folder, loader, model.state_dict(), written)
    del model
    _tokenizer_loads(folder)


def check_llava_export(folder: str, written: dict[str, torch.Tensor], projector_prefix: str,
                       vision_folder: str | None = None, vision: dict[str, torch.Tensor] | None = None) -> None:
    """LLaVA's folder: the LLM part loads completely as the Llama it subclasses (the `projector_prefix` keys
    are LLaVA's own module, checked against `written`); a saved vision tower loads completely as CLIP."""
    model, info = _load(LlamaForCausalLM, folder)
    loader = "LlamaForCausalLM.from_pretrained"
    _refuse_partial(folder, loader, info, allowed_unexpected=projector_prefix)
    projector = {k for k in written if k.startswith(projector_prefix)}
    if not projector or projector != {k for k in info.get("unexpected_keys", []) if k.startswith(projector_prefix)}:
        raise PadError(f"{folder}: the {projector_prefix}* weights written are not the ones in the folder; "
                       f"export refused")
    llm = {k: v for k, v in written.items() if not k.startswith(projector_prefix)}
    _refuse_changed(folder, loader, model.state_dict(), llm)
    del model
    if vision_folder is not None and vision is not None:
        check_clip_tower(vision_folder, vision)
    _tokenizer_loads(folder)


def check_stage1_export(folder: str, projector: dict[str, torch.Tensor], prefix: str,
                        vision_folder: str | None = None, vision: dict[str, torch.Tensor] | None = None) -> None:
    """LLaVA's stage-1 files: `mm_projector.bin` holds exactly `projector` under `prefix` (what
    `--pretrain_mm_mlp_adapter` loads strictly); a saved vision tower loads completely as CLIP."""
    path = f"{folder}/{LLAVA_PROJECTOR_FILE}"
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    _refuse_changed(path, "torch.load", {k.removeprefix(prefix): v for k, v in loaded.items()}, projector)
    extra = {k for k in loaded if k.removeprefix(prefix) not in projector}
    if extra:
        raise PadError(f"{path}: holds weights the projector does not have: {_first(extra)}; export refused")
    if vision_folder is not None and vision is not None:
        check_clip_tower(vision_folder, vision)


def check_clip_tower(folder: str, written: dict[str, torch.Tensor]) -> None:
    """A saved CLIP tower (LLaVA's `vision_tower/`) loads exactly `written` as `CLIPVisionModel`."""
    tower, info = _load(CLIPVisionModel, folder)
    _refuse_partial(folder, "CLIPVisionModel.from_pretrained", info)
    _refuse_changed(folder, "CLIPVisionModel.from_pretrained", tower.state_dict(), written)
