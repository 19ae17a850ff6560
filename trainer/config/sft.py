"""Schema of an instruction-tuning manifest (`pad sft MANIFEST`), on the project's one config system.

```yaml
model:                     # the same section as pad pretrain's (vision, llm, projector)
  vision: {checkpoint: openai/clip-vit-large-patch14-336}
  llm: {checkpoint: lmsys/vicuna-7b-v1.5, max_length: 2048}
  projector: {kind: mlp2x_gelu}
init: {projector: runs/pretrain-vicuna7b}   # a PAD run, its export, a .safetensors, or LLaVA's mm_projector.bin
data: {path: data/llava_v1_5_mix665k.json, image_folder: data/images, template: vicuna_v1}
train: {output_dir: runs/sft-vicuna7b}      # lr 2e-5, global batch 128, cosine, warmup 0.03, 1 epoch, ZeRO-3
launch: {mode: ray, num_workers: 8}
```
The template name (`data.template`) and `model` are what an export reads back from the run's config.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Iterable, Literal

from pydantic import Field, field_validator, model_validator

from pad_pipeline.core.config import ConfigModel, get_dotted, load_config
from trainer.config.sections import ExportConfig, LaunchConfig, ModelConfig, TrainBase, check_batch_sizes
from trainer.data.chat.templates import TEMPLATES
from trainer.export.formats import SFT_END_FORMATS

EXPORT_FORMATS = SFT_END_FORMATS


class InitConfig(ConfigModel):
    projector: str | None = Field(None, description="stage-1 projector: a pad pretrain run folder, its "
                                                    "export/projector.safetensors, or LLaVA's mm_projector.bin; "
                                                    "null: a fresh random projector")


class SftDataConfig(ConfigModel):
    path: str = Field(..., description="conversation JSON in the llava_v1_5_mix665k.json format")
    image_folder: str = Field(..., description="folder the entries' image paths are relative to")
    template: Annotated[str, TEMPLATES.known("data.template")] = Field(
        "vicuna_v1", description=f"one of {', '.join(TEMPLATES.names())}")
    image_aspect: Literal["crop", "pad"] = Field("pad", description="pad: LLaVA-1.5's expand-to-square with the "
                                                                    "processor mean colour; crop: CLIP's crop")
    group_by_modality_length: bool = Field(False, description="LLaVA's: micro-batches of only image or only text "
                                                              "samples, grouped by length")
    on_bad_sample: Literal["error", "skip"] = Field("error", description="error: stop naming the sample; "
                                                                         "skip: leave it out and count it")
    check_images: bool = Field(True, description="check every image file exists while indexing")
    shuffle: bool = True
    num_workers: int = Field(2, ge=0, description="DataLoader worker processes per rank")
    prefetch_factor: int = Field(4, ge=1)


class SftTrainConfig(TrainBase):
    output_dir: str = "runs/sft"
    global_batch_size: int = Field(128, ge=1)
    micro_batch_size: int = Field(16, ge=1, description="per rank and forward pass")
    lr: float = Field(2e-5, gt=0.0)
    deepspeed: str = Field("cluster/deepspeed/zero3.json", description="DeepSpeed JSON (ours fill the rest)")


class SftExportConfig(ExportConfig):
    formats: list[str] = Field(list(EXPORT_FORMATS), description="exports written at the end: hf, llava")

    @field_validator("formats")
    @classmethod
    def _known_formats(cls, formats: list[str]) -> list[str]:
        unknown = [f for f in formats if f not in EXPORT_FORMATS]
        if unknown:
            raise ValueError(f"unknown export formats {unknown}; valid: {', '.join(EXPORT_FORMATS)}")
        return formats


class SftConfig(ConfigModel):
    model: ModelConfig = ModelConfig()
    init: InitConfig = InitConfig()
    data: SftDataConfig
    train: SftTrainConfig = SftTrainConfig()
    launch: LaunchConfig = LaunchConfig()
    export: SftExportConfig = SftExportConfig()

    @model_validator(mode="after")
    def _check(self) -> "SftConfig":
        check_batch_sizes(self.train, self.launch)
        return self

    @property
    def grad_accum(self) -> int:
        return self.train.global_batch_size // (self.train.micro_batch_size * self.launch.num_workers)


# Fields whose change makes a checkpoint meaningless for a resume (the rest, e.g. save_every, may change).
SFT_RESUME_FIELDS = ("model", "init.projector", "data.path", "data.image_folder", "data.template",
                     "data.image_aspect", "data.group_by_modality_length", "data.on_bad_sample", "data.shuffle",
                     "train.seed", "train.global_batch_size", "train.micro_batch_size", "train.lr",
                     "train.weight_decay", "train.warmup_ratio", "launch.num_workers")


def sft_resume_identity(cfg: SftConfig) -> dict[str, Any]:
    data = cfg.model_dump(mode="json")
    return {dotted: get_dotted(data, dotted) for dotted in SFT_RESUME_FIELDS}


def load_sft_config(path: str | Path, overrides: Iterable[str] = ()) -> SftConfig:
    return load_config(path, overrides, SftConfig)
