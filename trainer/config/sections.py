"""The manifest sections both training stages share, written once: model, the patch-sample rules, the
optimisation fields, launch, export, and the checks and resume identity every stage config uses.

`trainer.config.pretrain` (stage 1) and `trainer.config.sft` (stage 2) compose these into their schemas;
`pad analyze` (`trainer.analysis.config`) reuses `ModelConfig` and `PatchSampleConfig`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from pad_pipeline.core.config import ConfigModel
from trainer.export.formats import DtypeName
from trainer.models.registry import PROJECTORS


class VisionConfig(ConfigModel):
    checkpoint: str = Field("openai/clip-vit-large-patch14-336", description="hub id, local path or tiny-random")
    revision: str | None = None
    select_layer: int = Field(-2, description="hidden_states index whose features are projected (LLaVA: -2)")
    drop_cls: bool = Field(True, description="drop the CLS token (576 patch tokens remain for ViT-L/14-336)")


class LlmConfig(ConfigModel):
    checkpoint: str = Field("lmsys/vicuna-7b-v1.5", description="hub id, local path or tiny-random")
    revision: str | None = None
    gradient_checkpointing: bool = True
    max_length: int = Field(2048, ge=8, description="tokens per sample, vision tokens included")


class ProjectorConfig(ConfigModel):
    kind: Annotated[str, PROJECTORS.known("model.projector.kind")] = Field(
        "mlp2x_gelu", description=f"one of {', '.join(PROJECTORS.names())}")
    num_tokens: int = Field(256, ge=1, description="c_abstractor: output tokens (a square number)")
    depth: int = Field(3, ge=0, description="c_abstractor: residual blocks before and after pooling")
    hidden_size: int | None = Field(None, ge=1, description="c_abstractor: conv width (default: vision width)")


class ModelConfig(ConfigModel):
    vision: VisionConfig = VisionConfig()
    llm: LlmConfig = LlmConfig()
    projector: ProjectorConfig = ProjectorConfig()


class PatchSampleConfig(ConfigModel):
    """How a PAD sample becomes vision tokens and regions: shared by `pad pretrain`'s and `pad analyze`'s
    `data` sections, so training and measurement read samples by the one definition."""

    image_aspect: Literal["crop", "pad"] = Field(
        "crop", description="crop: the CLIP processor's resize + centre crop (LLaVA-1.5 pretraining); "
                            "pad: LLaVA's expand-to-square with the mean colour first")
    min_coverage: float = Field(0.5, gt=0.0, le=1.0, description="part of a token's area a mask must cover "
                                                                  "(paper: half the patch)")
    max_regions: int = Field(64, ge=1, description="labels kept per sample (in record order)")

class TrainBase(ConfigModel):
    """Optimisation fields both stages share (stage 2 changes the defaults)."""

    output_dir: str = "runs/pretrain"
    seed: int = 42
    epochs: float = Field(1.0, gt=0.0)
    max_steps: int | None = Field(None, ge=1, description="optimizer steps; default: epochs over the build")
    global_batch_size: int = Field(256, ge=1)
    micro_batch_size: int = Field(32, ge=1, description="per rank and forward pass")
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0)
    grad_clip: float = Field(1.0, ge=0.0)
    deepspeed: str = Field("cluster/deepspeed/zero2.json", description="DeepSpeed JSON (ours fill the rest)")
    precision: Literal["auto", "bf16", "fp32"] = Field("auto", description="auto: bf16 on GPU, fp32 on CPU")
    save_every: int = Field(500, ge=1, description="optimizer steps between checkpoints")
    keep_checkpoints: int = Field(2, ge=1)
    tensorboard: bool = True
    progress: bool = True

class LaunchConfig(ConfigModel):
    mode: Literal["auto", "local", "ray"] = Field(
        "auto", description="auto: Ray Train when more than one worker or a Ray address is set, else local")
    num_workers: int = Field(1, ge=1, description="data-parallel ranks (one per GPU)")
    use_gpu: bool | None = Field(None, description="default: whether CUDA is available")
    cpus_per_worker: int = Field(4, ge=1)
    address: str | None = Field(None, description="Ray address ('auto': a `ray start` cluster on this "
                                   "machine); default: RAY_ADDRESS, else a new local instance")
    max_failures: int = Field(0, ge=0, description="Ray Train restarts; each resumes from the last checkpoint")


class ExportConfig(ConfigModel):
    dtype: DtypeName = "bfloat16"

def check_batch_sizes(train: TrainBase, launch: LaunchConfig) -> None:
    """The global batch must be whole micro-batches on every rank (ValueError otherwise)."""
    per_step = train.micro_batch_size * launch.num_workers
    if train.global_batch_size % per_step:
        raise ValueError(f"train.global_batch_size ({train.global_batch_size}) must be a multiple of "
                         f"micro_batch_size x launch.num_workers ({per_step})")
