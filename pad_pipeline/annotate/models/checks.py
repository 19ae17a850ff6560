"""Checks of a manifest's model files before any work: one line naming the field, no torch, no network.

`check_models(models)` runs in the driver before the plan is written or Ray starts, so a missing
checkpoint or tag list, or a checkpoint that is neither a folder nor a hub id, fails in a second
instead of inside an annotator actor. Each model kind names its checker in `CHECKERS` (beside the
builder registries): RAM/RAM++ read files (a local path must be a file; an fsspec URL is left to the
actor), transformers models load a local folder or a hub id (a folder must hold `config.json`; a hub
id must follow huggingface_hub's repo-id rules; whether it exists on the Hub is not asked here).
Paths are relative to the current directory, as the actors resolve them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from pad_pipeline.core.errors import ConfigError
from pad_pipeline.core.runtime import TINY_RANDOM

RAM_DOWNLOADS = {
    "ram": "https://huggingface.co/xinyu1205/recognize_anything_model",
    "ram_plus": "https://huggingface.co/xinyu1205/recognize-anything-plus-model",
}
RAM_DATA = "https://github.com/xinyu1205/recognize-anything/tree/main/ram/data"


def _local_path(location: str) -> Path | None:
    """The local path of `location`, or None for a remote fsspec URL (checked where it is read)."""
    if location.startswith("file://"):
        return Path(location[len("file://"):])
    if "://" in location:
        return None
    return Path(location).expanduser()


def check_file(location: str | None, field: str, hint: str) -> None:
    """A local `location` must be an existing file; `hint` says where to get it."""
    if location is None:
        return
    path = _local_path(location)
    if path is None:
        return
    if path.is_dir():
        raise ConfigError(f"field '{field}': {location} is a folder, not a file; {hint}")
    if not path.is_file():
        raise ConfigError(f"field '{field}': {location} does not exist; {hint}")


def _looks_like_path(checkpoint: str) -> bool:
    return checkpoint.startswith(("/", "./", "../", "~", ".")) or checkpoint.count("/") > 1 or "\\" in checkpoint


def check_hf_checkpoint(checkpoint: str, field: str) -> None:
    """A transformers checkpoint: tiny-random, a local folder with config.json, or a well-formed hub id."""
    if checkpoint == TINY_RANDOM:
        return
    if "://" in checkpoint:
        raise ConfigError(f"field '{field}': {checkpoint} is a URL; transformers loads a hub id (org/name) "
                          "or a local checkpoint folder: download it to a folder and give that")
    path = Path(checkpoint).expanduser()
    if path.is_file():
        raise ConfigError(f"field '{field}': {checkpoint} is a file; give the checkpoint folder (with "
                          "config.json) or a hub id (org/name)")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"field '{field}': folder {checkpoint} has no config.json, so it is not a "
                              "transformers checkpoint; give the folder save_pretrained wrote, or a hub id")
        return
    if _looks_like_path(checkpoint):
        raise ConfigError(f"field '{field}': {checkpoint} does not exist; give an existing checkpoint folder "
                          "or a hub id (org/name)")
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(checkpoint)
    except HFValidationError as exc:
        raise ConfigError(f"field '{field}': {checkpoint!r} is neither an existing folder nor a valid hub id "
                          f"({exc})") from None


def _check_vocabulary_files(section: Any, hint: str) -> None:
    check_file(section.tag_list, "models.tagger.tag_list", hint)
    check_file(section.tag_thresholds, "models.tagger.tag_thresholds", hint)


def check_clip_tagger(section: Any) -> None:
    check_hf_checkpoint(section.checkpoint, "models.tagger.checkpoint")
    _check_vocabulary_files(section, "give one tag per line, or leave it out for the packaged tags")


def check_ram_tagger(section: Any) -> None:
    """RAM/RAM++: the official .pth/.safetensors file and the tag list it was trained on."""
    data_hint = f"download it from {RAM_DATA} or set the field"
    _check_vocabulary_files(section, data_hint)
    if section.checkpoint == TINY_RANDOM:
        return
    download = RAM_DOWNLOADS.get(section.kind, RAM_DOWNLOADS["ram_plus"])
    check_file(section.checkpoint, "models.tagger.checkpoint",
               f"download it from {download} or set models.tagger.checkpoint")
    if section.tag_list is None:
        raise ConfigError("field 'models.tagger.tag_list': RAM/RAM++ need the tag list of their checkpoint "
                          f"(ram_tag_list.txt, 4585 tags); {data_hint}")


def _hf_section(field: str) -> Callable[[Any], None]:
    def check(section: Any) -> None:
        check_hf_checkpoint(section.checkpoint, field)
    return check


_HF = {role: _hf_section(f"models.{role}.checkpoint") for role in ("tagger", "detector", "segmenter")}

# role -> kind -> checker; every kind of the builder registries is listed (tested).
CHECKERS: dict[str, dict[str, Callable[[Any], None]]] = {
    "tagger": {"clip": check_clip_tagger, "ram": check_ram_tagger, "ram_plus": check_ram_tagger},
    "detector": {"grounding_dino": _HF["detector"], "mm_grounding_dino": _HF["detector"]},
    "segmenter": {"sam": _HF["segmenter"], "sam2": _HF["segmenter"]},
}


def check_models(models: Any) -> None:
    """Every model section of a `ModelsConfig`, in chain order; the first problem is a `ConfigError`.
    A kind not listed (yet) gets the transformers checkpoint check."""
    for role in ("tagger", "detector", "segmenter"):
        section = getattr(models, role)
        CHECKERS[role].get(section.kind, _HF[role])(section)
