"""Schema of the REC miniature (Table 5, and Table 4's captions, in miniature): the `miniature:` section.

```yaml
model: {vision: {checkpoint: tiny-random}, llm: {checkpoint: tiny-random, max_length: 512}, projector: {...}}
scenes:                                   # synthetic shape scenes; folders are made under output_dir/data-HASH
  train: {num_scenes: 2000, seed: 0}
  heldout: {num_scenes: 200, seed: 1}
expressions: {train_per_image: 3, heldout_per_image: 2, split: val}
warmup: {steps: 300, hidden_size: 64}     # the LM warm-up; its folder becomes model.llm.checkpoint
vision_tower: {positions: sincos}         # the tiny CLIP tower, written per seed; becomes model.vision.checkpoint
stage1:                                   # `pad pretrain` runs: common manifest + beta_max + set per run
  common: {train: {max_steps: 150, ...}}
  runs: {caption-only: {beta_max: 0}, patch-aligned: {beta_max: 5}}
stage2:                                   # `pad sft` on the REC conversations, one run per init
  common: {train: {max_steps: 150, ...}}
  inits: {random: null, caption-only: caption-only, patch-aligned: patch-aligned}
```
Per seed, the tower's and the warm-up's weights, and both stages' `train.seed`, are the seed; the scenes are
shared by all seeds.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from pydantic import Field, model_validator

from pad_pipeline.core.config import ConfigModel, build_config, load_config, set_dotted
from pad_pipeline.core.errors import ConfigError
from pad_pipeline.core.runtime import TINY_RANDOM
from pad_pipeline.dataset.shapes import SyntheticShapesConfig
from trainer.analysis.config import NAME, TrainPlan
from trainer.config.pretrain import PretrainConfig
from trainer.config.sections import ModelConfig
from trainer.config.sft import SftConfig
from trainer.eval.miniature.vision_config import VisionTowerConfig
from trainer.eval.miniature.warmup_config import WarmupConfig


class SceneSet(SyntheticShapesConfig):
    out: str = Field("", description="set by prepare_miniature (OUTPUT/data-HASH/NAME); leave empty")


class ScenesConfig(ConfigModel):
    train: SceneSet = SceneSet(num_scenes=2000, seed=0)
    heldout: SceneSet = SceneSet(num_scenes=200, seed=1)

    @model_validator(mode="after")
    def _check(self) -> "ScenesConfig":
        if self.train.seed == self.heldout.seed:
            raise ValueError("scenes.heldout.seed must differ from scenes.train.seed (held-out scenes)")
        return self


class ExpressionsConfig(ConfigModel):
    train_per_image: int = Field(3, ge=1, description="REC turns per training conversation (at most)")
    heldout_per_image: int = Field(2, ge=1, description="evaluated expressions per held-out image (at most)")
    split: str = Field("val", description="the held-out refs' `split` in refs(unc).p")


class Stage2Plan(ConfigModel):
    common: dict[str, Any] = Field(default_factory=dict, description="pad sft manifest shared by all runs "
                                                                     "(train, launch, export; data.template...)")
    inits: dict[str, str | None] = Field(..., min_length=1, description="run name -> stage-1 run name whose "
                                                                        "projector starts it, or null (random)")


class MiniatureEvalConfig(ConfigModel):
    caption_tokens: int = Field(24, ge=1, description="max new tokens of a held-out scene's caption")
    rec_tokens: int = Field(28, ge=1, description="max new tokens of a REC answer (25 for a tiny-tokenizer box)")


class MiniatureConfig(ConfigModel):
    seeds: list[int] = Field([0, 1, 2], min_length=1, description="one full pipeline per seed")
    model: ModelConfig = ModelConfig()
    scenes: ScenesConfig = ScenesConfig()
    expressions: ExpressionsConfig = ExpressionsConfig()
    warmup: WarmupConfig | None = Field(WarmupConfig(), description="null: the random tiny LLM as it is")
    vision_tower: VisionTowerConfig | None = Field(VisionTowerConfig(), description="with model.vision.checkpoint "
                                                   "tiny-random; null: the tiny preset's tower as it is")
    stage1: TrainPlan
    stage2: Stage2Plan
    eval: MiniatureEvalConfig = MiniatureEvalConfig()

    @model_validator(mode="after")
    def _check(self) -> "MiniatureConfig":
        bad = [n for n in [*self.stage1.runs, *self.stage2.inits] if not NAME.match(n)]
        if bad:
            raise ValueError(f"names {bad} must be letters, digits, '_', '-' or '.' (they name folders)")
        for name, source in self.stage2.inits.items():
            if source is not None and source not in self.stage1.runs:
                raise ValueError(f"stage2.inits.{name}: {source!r} names no run of stage1.runs "
                                 f"{list(self.stage1.runs)}")
        if self.vision_tower is not None and self.model.vision.checkpoint != TINY_RANDOM:
            raise ValueError(f"vision_tower rebuilds the tiny-random tower; set it to null to use model.vision."
                             f"checkpoint {self.model.vision.checkpoint!r} as it is")
        for part in ("stage1", "stage2"):
            if "model" in getattr(self, part).common:
                raise ValueError(f"{part}.common.model: runs use the top-level model")
        for run in self.stage1.runs:  # every run must be a valid config before anything starts
            stage1_config(self, run, "OUT", 0, "DATA", Checkpoints.of(self))
        for run in self.stage2.inits:
            stage2_config(self, run, "OUT", 0, "DATA.json", "IMAGES", Checkpoints.of(self), None)
        return self


@dataclass(frozen=True)
class Checkpoints:
    """What every run of a seed loads: its vision tower and its (warmed-up) LLM."""

    vision: str
    llm: str

    @classmethod
    def of(cls, cfg: MiniatureConfig) -> "Checkpoints":
        return cls(cfg.model.vision.checkpoint, cfg.model.llm.checkpoint)


def _model(cfg: MiniatureConfig, checkpoints: Checkpoints) -> dict[str, Any]:
    model = cfg.model.model_dump(mode="json")
    model["vision"]["checkpoint"] = checkpoints.vision
    model["llm"]["checkpoint"] = checkpoints.llm
    return model


def _build(data: dict[str, Any], schema: type, what: str) -> Any:
    try:
        return build_config(data, schema, source=what)
    except ConfigError as e:
        raise ValueError(str(e)) from None  # reported with the manifest's name and field by load_config


def stage1_config(cfg: MiniatureConfig, run: str, output_dir: str, seed: int, build: str,
                  checkpoints: Checkpoints) -> PretrainConfig:
    """`pad pretrain` config of stage-1 run `run`: model (the seed's checkpoints) + common + beta_max + set + seed."""
    spec = cfg.stage1.runs[run]
    data: dict[str, Any] = copy.deepcopy({**cfg.stage1.common, "model": _model(cfg, checkpoints)})
    set_dotted(data, "data.path", build)
    set_dotted(data, "train.beta_max", spec.beta_max)
    set_dotted(data, "train.output_dir", output_dir)
    set_dotted(data, "train.seed", seed)
    for dotted, value in spec.set.items():
        set_dotted(data, dotted, value)
    return _build(data, PretrainConfig, f"stage1 run {run!r}")


def stage2_config(cfg: MiniatureConfig, run: str, output_dir: str, seed: int, conversations: str, images: str,
                  checkpoints: Checkpoints, projector: str | None) -> SftConfig:
    """`pad sft` config of stage-2 run `run`: model + common + REC data + init projector + seed."""
    data: dict[str, Any] = copy.deepcopy({**cfg.stage2.common, "model": _model(cfg, checkpoints)})
    set_dotted(data, "data.path", conversations)
    set_dotted(data, "data.image_folder", images)
    set_dotted(data, "init.projector", projector)
    set_dotted(data, "train.output_dir", output_dir)
    set_dotted(data, "train.seed", seed)
    return _build(data, SftConfig, f"stage2 run {run!r}")


class MiniatureManifest(ConfigModel):
    """A manifest holding only the miniature (until `pad eval`'s own schema embeds the section)."""

    output_dir: str = "runs/reproduce-rec"
    miniature: MiniatureConfig


def load_miniature_manifest(path: str | Path, overrides: Iterable[str] = ()) -> MiniatureManifest:
    return load_config(path, overrides, MiniatureManifest)
