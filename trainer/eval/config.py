"""Schema of an evaluation manifest (`pad eval MANIFEST`), on the project's one config system.

```yaml
output_dir: runs/eval-vicuna7b
models:                                   # table rows, in order; the first is the baseline of the differences
  llava-1.5: {stage1: runs/pretrain-baseline, stage2: runs/sft-baseline}
  patch-aligned: {stage1: runs/pretrain-vicuna7b, stage2: runs/sft-vicuna7b}
captions:                                 # Table 4: the stage-1 model (frozen LLM + projector) captions images
  annotations: data/coco/annotations/captions_val2017.json   # or Karpathy's dataset_coco.json with split: test
  images: data/coco/val2017
rec:                                      # Table 5: the stage-2 model answers LLaVA-1.5's REC prompt
  splits:
    refcoco_val: {refs: data/refcoco/refs(unc).p, instances: data/refcoco/instances.json,
                  images: data/coco/train2014, split: val}
    refcocog_test: {format: parquet, path: data/lmms-lab/RefCOCOg/test-00000-of-00001.parquet}
lmms_eval: {tasks: [gqa, scienceqa_img, mme]}   # Tables 6-7 through lmms-eval's llava_hf on RUN/export-hf
```
Named mappings (not lists) keep every field reachable by `--set`, e.g. `--set rec.splits.refcoco_val.limit=100`.
A `miniature:` manifest (manifests/reproduce-rec.yaml) instead makes its scenes and runs first, per seed, and
evaluates those (`trainer.eval.miniature`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Literal

from pydantic import Field, model_validator

from pad_pipeline.core.config import ConfigModel, load_config
from trainer.config.sections import ModelConfig
from trainer.eval.miniature.config import MiniatureConfig

RANDOM = "random"
NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")


class ModelSpec(ConfigModel):
    """One evaluated model (a table row): its stage-1 run for captions, its stage-2 run for REC and lmms-eval."""

    stage1: str | None = Field(None, description="a pad pretrain run folder, or `random`: a fresh projector "
                                                 "(seeded) on `model`'s towers")
    stage2: str | None = Field(None, description="a pad sft run folder")
    hf: str | None = Field(None, description="transformers Llava folder lmms-eval loads; default STAGE2/export-hf")
    model: ModelConfig | None = Field(None, description="the towers of a `random` stage1")
    seed: int = Field(0, description="initialisation seed of a `random` projector")


class CaptionsConfig(ConfigModel):
    annotations: str = Field(..., description="COCO caption JSON (captions_val2017.json) or Karpathy's "
                                              "dataset_coco.json")
    images: str = Field(..., description="the image folder the annotations' file names are relative to")
    split: str | None = Field(None, description="Karpathy split (test, val, ...); unused for COCO caption JSON")
    limit: int | None = Field(None, ge=1, description="the first N images only")
    max_new_tokens: int = Field(48, ge=1)


class RecSplitConfig(ConfigModel):
    format: Literal["refer", "parquet"] = Field("refer", description="refer: refs(unc|umd).p + COCO instances; "
                                                                      "parquet: lmms-lab's RefCOCO* files")
    refs: str | None = Field(None, description="refer: refs(unc).p (RefCOCO, RefCOCO+) or refs(umd).p (RefCOCOg)")
    instances: str | None = Field(None, description="refer: the COCO instances.json beside it")
    images: str | None = Field(None, description="refer: the train2014 image folder")
    split: str | None = Field(None, description="refer: val, testA, testB, test, ...; parquet: with a folder, "
                                                "its {split}-*.parquet files")
    path: str | None = Field(None, description="parquet: a file, or a folder of them")
    limit: int | None = Field(None, ge=1, description="the first N expressions only")

    @model_validator(mode="after")
    def _fields(self) -> "RecSplitConfig":
        needed = ("refs", "instances", "images", "split") if self.format == "refer" else ("path",)
        missing = [f for f in needed if getattr(self, f) is None]
        if missing:
            raise ValueError(f"format {self.format} needs {', '.join(missing)}")
        return self


class RecConfig(ConfigModel):
    splits: dict[str, RecSplitConfig] = Field(..., min_length=1, description="column name -> split, in order")
    frame: Literal["image", "square"] = Field(
        "image", description="the frame of the model's normalised boxes: image (x / width, y / height, "
                             "LLaVA-1.5's RefCOCO data) or square (the padded square of image_aspect: pad)")
    threshold: float = Field(0.5, gt=0.0, le=1.0, description="IoU of a hit (Acc@0.5)")
    max_new_tokens: int = Field(32, ge=1)


class LmmsConfig(ConfigModel):
    tasks: list[str] | None = Field(None, description="lmms-eval task names; default: the paper's Tables 6-7")
    limit: int | None = Field(None, ge=1, description="lmms-eval --limit (samples per task)")
    include_path: str | None = Field(None, description="a folder of extra task YAMLs (lmms-eval --include_path)")


class GenerationConfig(ConfigModel):
    device: str = Field("auto", description="auto (the first visible GPU, else CPU), cpu, cuda, cuda:N")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="auto: bf16 on GPU")
    batch_size: int = Field(16, ge=1)
    num_workers: int = Field(2, ge=0, description="image-reading processes beside the generating one")
    gpus: int = Field(1, ge=1, description="GPUs to answer on: more than 1 runs one Ray actor per GPU, each "
                                           "with its own copy of the model")
    cpus_per_gpu: float = Field(1.0, gt=0.0, description="CPUs each Ray actor reserves")


class EvalConfig(ConfigModel):
    output_dir: str = "runs/eval"
    models: dict[str, ModelSpec] = Field(default_factory=dict, description="row name -> model, in table order")
    captions: CaptionsConfig | None = None
    rec: RecConfig | None = None
    lmms_eval: LmmsConfig | None = None
    generation: GenerationConfig = GenerationConfig()
    miniature: MiniatureConfig | None = Field(None, description="Tables 4-5 in miniature: the scenes, runs and "
                                                                "seeds to make first (they give models and tasks)")

    @model_validator(mode="after")
    def _check(self) -> "EvalConfig":
        if self.miniature is not None:
            if self.models or self.captions or self.rec or self.lmms_eval:
                raise ValueError("miniature makes its own models and tasks: leave models, captions, rec and "
                                 "lmms_eval out")
            return self
        if not self.models:
            raise ValueError("models: give at least one model to evaluate")
        names = [*self.models, *(self.rec.splits if self.rec else ())]
        bad = [n for n in names if not NAME.match(n)]
        if bad:
            raise ValueError(f"names {bad} must be letters, digits, '_', '-', '+' or '.' (they name files)")
        if self.captions is None and self.rec is None and self.lmms_eval is None:
            raise ValueError("nothing to evaluate: give captions, rec and/or lmms_eval")
        for name, m in self.models.items():
            if m.stage1 == RANDOM and m.model is None:
                raise ValueError(f"models.{name}: stage1 random needs `model` (the vision tower and LLM to use)")
        for task, stage in (("captions", "stage1"), ("rec", "stage2"), ("lmms_eval", "stage2")):
            if getattr(self, task) is not None and not any(getattr(m, stage) or m.hf for m in self.models.values()):
                raise ValueError(f"{task} evaluates {stage} models, and no model gives a {stage}")
        return self


def load_eval_config(path: str | Path, overrides: Iterable[str] = ()) -> EvalConfig:
    return load_config(path, overrides, EvalConfig)
