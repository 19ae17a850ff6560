"""Schema of an analysis manifest (`pad analyze MANIFEST`), on the project's one config system.

```yaml
output_dir: runs/analyze-vicuna7b
model: {vision: {checkpoint: openai/clip-vit-large-patch14-336}, llm: {checkpoint: lmsys/vicuna-7b-v1.5}}
data: {path: out/pad-llava558k, num_images: 1000}
projectors:                        # name -> source; one table row each, in this order
  random: {source: random}
  llava-1.5: {source: checkpoints/llava-v1.5-7b-pretrain/mm_projector.bin}
  patch-aligned: {source: runs/pretrain-vicuna7b}
```
A reproduction manifest adds what to make first: `synthetic:` (named synthetic-shape builds, see
`pad_pipeline.dataset.synthetic`) and `train:` (stage-1 runs sharing `model`, each a `pad pretrain`
config made of `train.common` + the run's `beta_max` + its `set`), which `projectors` name as
`train:NAME`. Named mappings (not lists) keep every field reachable by `--set`, e.g.
`--set train.runs.patch-aligned.beta_max=2`. `warmup_llm:` first trains the LLM as a language model on a
synthetic build's captions and referring expressions (a real LLM's embeddings carry meaning; a random one's
do not) and uses it everywhere. See manifests/reproduce-demo.yaml.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal

from pydantic import Field, model_validator

from pad_pipeline.core.config import ConfigModel, build_config, load_config, set_dotted
from pad_pipeline.core.errors import ConfigError
from pad_pipeline.dataset.shapes import SyntheticShapesConfig
from trainer.analysis.metrics import THRESHOLD_RULES, ThresholdRule
from trainer.config.pretrain import PretrainConfig
from trainer.config.sections import ModelConfig, PatchSampleConfig
from trainer.eval.miniature.warmup_config import WarmupConfig
from trainer.models.registry import PROJECTORS

TRAIN_PREFIX = "train:"
NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class AnalyzeDataConfig(PatchSampleConfig):
    """The analysed images; how a sample becomes tokens and regions is pad pretrain's (`PatchSampleConfig`)."""

    path: str = Field(..., description="a PAD build; its first num_images samples (shard, then key order)")
    num_images: int = Field(1000, ge=1)
    batch_size: int = Field(32, ge=1)


class ProjectorSpec(ConfigModel):
    source: str = Field("random", description="random | train:RUN | a run folder | projector.safetensors | "
                                              "LLaVA mm_projector.bin")
    kind: str | None = Field(None, description="for `random` and files without metadata; default: inferred or "
                                               f"model.projector; one of {', '.join(PROJECTORS.names())}")
    seed: int = Field(0, description="initialisation seed of a random projector")


class ThresholdConfig(ConfigModel):
    rule: Annotated[str, THRESHOLD_RULES.known("metrics.threshold.rule")] = Field(
        "mean_std", description=f"adaptive threshold of Align(V, W), one of {', '.join(THRESHOLD_RULES.names())}; "
                                "see trainer.analysis.metrics.ThresholdRule")
    value: float = Field(1.0, description="mean_std: std multiplier; relative: fraction of the range; "
                                          "absolute: the cosine")

    def to_rule(self) -> ThresholdRule:
        return ThresholdRule(self.rule, self.value)


class MetricsConfig(ConfigModel):
    threshold: ThresholdConfig = ThresholdConfig()
    mp_tokens: int = Field(5, ge=1, description="matching-pursuit steps kept per patch of rendered images")


class RenderConfig(ConfigModel):
    images: int = Field(4, ge=0, description="render the first N analysed images (unless keys are given)")
    keys: list[str] = Field(default_factory=list, description="sample keys to render")
    cell_px: int = Field(56, ge=16, description="pixels per token cell in the PNGs")


class TrainRun(ConfigModel):
    beta_max: float = Field(..., ge=0.0)
    set: dict[str, Any] = Field(default_factory=dict, description="dotted pad pretrain fields of this run")


class TrainPlan(ConfigModel):
    common: dict[str, Any] = Field(default_factory=dict, description="pad pretrain manifest shared by all "
                                                                     "runs (data, train, launch, export)")
    runs: dict[str, TrainRun] = Field(..., min_length=1, description="run name -> run")


class WarmupLlm(WarmupConfig):
    """The LM warm-up (`trainer.eval.miniature.warmup`) on a synthetic build's text; its folder
    (OUTPUT/warmup-llm-HASH, by its settings and corpus) becomes model.llm.checkpoint of the runs and the
    measurement."""

    synthetic: str = Field(..., description="a `synthetic:` build whose captions and expressions are the corpus")
    expressions_per_image: int = Field(3, ge=1)
    seed: int = Field(0, description="initialisation and batch-order seed of the warm-up")


class AnalyzeConfig(ConfigModel):
    output_dir: str = "runs/analyze"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    model: ModelConfig = ModelConfig()
    data: AnalyzeDataConfig
    projectors: dict[str, ProjectorSpec] = Field(..., min_length=1, description="table row name -> source")
    metrics: MetricsConfig = MetricsConfig()
    render: RenderConfig = RenderConfig()
    synthetic: dict[str, SyntheticShapesConfig] = Field(default_factory=dict, description="builds made first")
    train: TrainPlan | None = None
    warmup_llm: WarmupLlm | None = Field(None, description="train the LLM on the scenes' text first")

    @model_validator(mode="after")
    def _check(self) -> "AnalyzeConfig":
        runs = list(self.train.runs) if self.train else []
        bad = [n for n in [*self.projectors, *runs] if not NAME.match(n)]
        if bad:
            raise ValueError(f"names {bad} must be letters, digits, '_', '-' or '.' (they name folders)")
        for name, p in self.projectors.items():
            if p.kind is not None:  # checked here, where the row's name (part of the field) is known
                PROJECTORS.check(p.kind, f"projectors.{name}.kind")
        for name, p in self.projectors.items():
            if p.source.startswith(TRAIN_PREFIX) and p.source[len(TRAIN_PREFIX):] not in runs:
                raise ValueError(f"projector {name!r}: {p.source!r} names no run of train.runs {runs}")
        if self.warmup_llm is not None and self.warmup_llm.synthetic not in self.synthetic:
            raise ValueError(f"warmup_llm.synthetic: {self.warmup_llm.synthetic!r} names no synthetic build "
                             f"{list(self.synthetic)}")
        for run in runs:
            pretrain_config(self, run)  # every run must be a valid pad pretrain config before anything starts
        return self


def warmup_dir(cfg: AnalyzeConfig) -> str:
    """OUTPUT/warmup-llm-HASH: another warm-up or corpus gets another folder (so the runs name another LLM)."""
    from trainer.eval.miniature.marker import keyed_folder

    w = cfg.warmup_llm
    assert w is not None, "warmup_dir needs warmup_llm"
    return keyed_folder(cfg.output_dir, "warmup-llm", w, cfg.synthetic[w.synthetic])


def train_run_dir(cfg: AnalyzeConfig, run: str) -> str:
    return str(Path(cfg.output_dir) / "train" / run)


def pretrain_config(cfg: AnalyzeConfig, run: str) -> PretrainConfig:
    """The `pad pretrain` config of run `run`: shared model + train.common + beta_max + the run's `set`."""
    assert cfg.train is not None
    spec = cfg.train.runs[run]
    if "model" in cfg.train.common:
        raise ValueError("train.common.model: runs use the top-level model (the analysis needs the same one)")
    data: dict[str, Any] = copy.deepcopy({**cfg.train.common, "model": cfg.model.model_dump(mode="json")})
    set_dotted(data, "train.beta_max", spec.beta_max)
    set_dotted(data, "train.output_dir", train_run_dir(cfg, run))
    for dotted, value in spec.set.items():
        set_dotted(data, dotted, value)
    try:
        return build_config(data, PretrainConfig, source=f"train run {run!r}")
    except ConfigError as e:
        raise ValueError(str(e)) from None  # reported with the manifest's name and field by load_config


def load_analyze_config(path: str | Path, overrides: Iterable[str] = ()) -> AnalyzeConfig:
    return load_config(path, overrides, AnalyzeConfig)
