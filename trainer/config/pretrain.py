"""Schema of a pretraining manifest (`pad pretrain MANIFEST`), on the project's one config system.

```yaml
model:
  vision: {checkpoint: openai/clip-vit-large-patch14-336}
  llm: {checkpoint: lmsys/vicuna-7b-v1.5}
  projector: {kind: mlp2x_gelu}
data: {path: out/pad-llava558k}
train: {output_dir: runs/pretrain-vicuna7b, global_batch_size: 256, micro_batch_size: 32}
launch: {mode: ray, num_workers: 8}
```
`checkpoint: tiny-random` builds the same classes from tiny configs with random weights (tests, demo).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from pydantic import Field, model_validator

from pad_pipeline.core.config import ConfigModel, get_dotted, load_config
from trainer.config.sections import (
    ExportConfig,
    LaunchConfig,
    ModelConfig,
    PatchSampleConfig,
    TrainBase,
    check_batch_sizes,
)


class DataConfig(PatchSampleConfig):
    path: str = Field("out/pad", description="a PAD build (local folder or fsspec URL); committed shards only")
    shuffle: bool = True
    num_workers: int = Field(2, ge=0, description="DataLoader worker processes per rank")
    prefetch_factor: int = Field(4, ge=1)


class TrainConfig(TrainBase):
    beta_max: float = Field(5.0, ge=0.0, description="patch-loss weight reached on the last step")


class PretrainConfig(ConfigModel):
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    launch: LaunchConfig = LaunchConfig()
    export: ExportConfig = ExportConfig()

    @model_validator(mode="after")
    def _check(self) -> "PretrainConfig":
        if self.model.projector.kind == "c_abstractor":
            side = round(self.model.projector.num_tokens ** 0.5)
            if side * side != self.model.projector.num_tokens:
                raise ValueError("model.projector.num_tokens must be a square number for c_abstractor")
        check_batch_sizes(self.train, self.launch)
        return self

    @property
    def grad_accum(self) -> int:
        return self.train.global_batch_size // (self.train.micro_batch_size * self.launch.num_workers)


# Fields whose change makes a checkpoint meaningless for a resume (the rest, e.g. save_every, may change).
RESUME_FIELDS = ("model", "data.path", "data.image_aspect", "data.min_coverage", "data.shuffle",
                 "data.max_regions", "train.seed", "train.global_batch_size", "train.micro_batch_size",
                 "train.lr", "train.weight_decay", "train.warmup_ratio", "train.beta_max", "launch.num_workers")


def resume_identity(cfg: PretrainConfig) -> dict[str, Any]:
    """The values of RESUME_FIELDS, compared against a checkpoint's before resuming."""
    data = cfg.model_dump(mode="json")
    return {dotted: get_dotted(data, dotted) for dotted in RESUME_FIELDS}


def load_pretrain_config(path: str | Path, overrides: Iterable[str] = ()) -> PretrainConfig:
    return load_config(path, overrides, PretrainConfig)
