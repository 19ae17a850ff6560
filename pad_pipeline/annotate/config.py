"""Schema of an annotation manifest (`pad annotate MANIFEST`), loaded by `load_annotate_config`.

```yaml
source: {kind: llava_json, path: data/blip_laion_cc_sbu_558k.json, image_root: data/images}
output: {path: s3://bucket/pad, shard_size: 1000}
models: {preset: paper}          # or tiny-random; explicit fields override the preset
runner: {annotators: 8, gpus_per_annotator: 1}
```
A preset (`MODEL_PRESETS`, beside the model registries) fills the `models` section first; whatever the
manifest (or `--set`) says wins. Every `kind` is checked against the registry that builds it as the
manifest loads, so a typo fails before a plan is written or Ray starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Iterable, Literal

from pydantic import Field

from pad_pipeline.annotate.models.registry import DETECTORS, MODEL_PRESETS, SEGMENTERS, TAGGERS
from pad_pipeline.annotate.sources.registry import SOURCES
from pad_pipeline.core.config import ConfigModel, load_config
from pad_pipeline.core.errors import ConfigError
from pad_pipeline.dataset.publish_config import PublishConfig


class SourceConfig(ConfigModel):
    kind: Annotated[str, SOURCES.known("source.kind")] = Field(description=f"one of {', '.join(SOURCES.names())}")
    path: str = Field(description="JSON file, image folder, tar URL/glob or brace pattern")
    image_root: str | None = Field(None, description="llava_json: folder the `image` fields are relative to")
    captions: str | None = Field(None, description="image_dir: optional JSONL of {file, caption}")
    limit: int | None = Field(None, ge=1, description="take only the first N items (a quick look)")
    allow_outside_root: bool = Field(False, description="read input paths that resolve outside the source's "
                                                        "root (image_root / the image folder); default: "
                                                        "such inputs are the named failure outside_root")


class OutputConfig(ConfigModel):
    path: str = "out/pad"
    shard_size: int = Field(1000, ge=1)
    jpeg_quality: int = Field(95, ge=50, le=100, description="re-encoding quality of non-JPEG inputs")


class IntakeConfig(ConfigModel):
    max_pixels: int = Field(89_478_485, ge=1, description="larger images are refused as too_large (bomb guard)")
    min_side: int = Field(8, ge=1, description="smaller images are refused as too_small")
    max_side: int | None = Field(None, ge=16, description="downscale longer side to this before annotating")
    max_bytes: int = Field(64 * 2**20, ge=1)


class TaggerConfig(ConfigModel):
    kind: Annotated[str, TAGGERS.known("models.tagger.kind")] = "clip"
    checkpoint: str = "tiny-random"
    revision: str | None = None
    tag_list: str | None = Field(None, description="one tag per line (RAM: ram_tag_list.txt)")
    tag_thresholds: str | None = Field(None, description="per-class thresholds, one per line (RAM)")
    threshold: float | None = Field(None, description="global threshold; overrides per-class ones")
    deny_list: list[str] = Field(default_factory=list)
    max_tags: int = Field(30, ge=1)
    image_size: int = Field(384, ge=16)
    batch_size: int = Field(8, ge=1)


class DetectorConfig(ConfigModel):
    kind: Annotated[str, DETECTORS.known("models.detector.kind")] = "grounding_dino"
    checkpoint: str = "tiny-random"
    revision: str | None = None
    box_threshold: float = 0.25
    text_threshold: float = 0.2
    max_text_tokens: int = Field(256, ge=8, description="Grounding DINO's text limit; tags are chunked under it")
    batch_size: int = Field(4, ge=1, description="(image, prompt chunk) pairs per forward pass; pairs of one "
                                                 "padded shape run together, a short pass is filled with blanks")
    canvas_multiple: int = Field(128, ge=32, multiple_of=32, description="a processed image is padded to a "
                                 "canvas whose sides are the next multiples of this (one shape per bucket)")
    text_cache_size: int = Field(256, ge=0, description="prompt-chunk encodings kept for reuse (0: per batch only)")


class NmsConfig(ConfigModel):
    iou_threshold: float = Field(0.5, ge=0.0, le=1.0)
    max_boxes: int = Field(100, ge=1)


class SegmenterConfig(ConfigModel):
    kind: Annotated[str, SEGMENTERS.known("models.segmenter.kind")] = "sam"
    checkpoint: str = "tiny-random"
    revision: str | None = None
    batch_size: int = Field(4, ge=1)
    mask_threshold: float = 0.0


class ModelsConfig(ConfigModel):
    preset: str | None = None
    device: str = "auto"
    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    seed: int = Field(0, description="seed of tiny-random weights")
    compile: bool = Field(False, description="torch.compile the image encoders (SAM, SAM 2, RAM's Swin): "
                                             "a CUDA speed knob, equal output up to float rounding")
    compile_detector: bool = Field(False, description="also torch.compile Grounding DINO's Swin backbone (its "
                                   "inputs are canvas buckets: a few static shapes); a speed knob, opt-in")
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] = Field(
        "default", description="torch.compile mode of what `compile` compiles (reduce-overhead: CUDA graphs)")
    weights_dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="dtype the detector's and segmenter's weights are held in (bfloat16: no autocast, "
                               "half the memory traffic; outputs change within tolerance, so it is in the hash)")
    tagger: TaggerConfig = Field(default_factory=TaggerConfig)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    nms: NmsConfig = Field(default_factory=NmsConfig)
    segmenter: SegmenterConfig = Field(default_factory=SegmenterConfig)


class RunnerConfig(ConfigModel):
    annotators: int | None = Field(None, ge=1, description="annotator actors (one model chain each); "
                                                            "default one per GPU, else 1")
    gpus_per_annotator: float = Field(1.0, ge=0.0)
    cpus_per_annotator: float = Field(1.0, ge=0.0)
    torch_threads: int | None = Field(None, ge=1, description="intra-op threads per actor (CPU)")
    cpus_per_shard_worker: float = Field(0.5, gt=0.0, description="CPUs of each shard worker (decode, encode, write)")
    shard_workers_per_annotator: int = Field(2, ge=1, description="shard workers (one shard each at a time) "
                                                                  "per annotator actor")
    batch_size: int = Field(8, ge=1, description="images per actor call")
    shard_retries: int = Field(2, ge=0)
    actor_restarts: int = Field(3, ge=0)
    stall_timeout_s: float = Field(1800.0, gt=0, description="no progress for this long fails the job")
    placement_timeout_s: float = Field(60.0, gt=0, description="annotators the cluster cannot place within "
                                                               "this long fail the job, naming the resources")
    num_cpus: int | None = Field(None, description="local Ray only: CPUs to declare")
    num_gpus: int | None = Field(None, description="local Ray only: GPUs to declare")


# The runner's fields before they were named after what they count (issue 11).
RENAMED_RUNNER_FIELDS = {
    "workers": "annotators",
    "gpus_per_worker": "gpus_per_annotator",
    "cpus_per_worker": "cpus_per_annotator",
    "shard_tasks_per_worker": "shard_workers_per_annotator",
    "cpus_per_shard_task": "cpus_per_shard_worker",
}


class AnnotateConfig(ConfigModel):
    source: SourceConfig
    output: OutputConfig = Field(default_factory=OutputConfig)
    intake: IntakeConfig = Field(default_factory=IntakeConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    runner: RunnerConfig = Field(default_factory=RunnerConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)  # `pad publish`; outside the config hash

    RENAMED = {f"runner.{old}": f"runner.{new}" for old, new in RENAMED_RUNNER_FIELDS.items()}

    @classmethod
    def apply_presets(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Fill `models` from `models.preset`; the manifest's own fields win."""
        models = data.get("models")
        if not isinstance(models, dict) or models.get("preset") is None:
            return data
        preset = models["preset"]
        if not isinstance(preset, str) or preset not in MODEL_PRESETS:
            raise ConfigError(f"field 'models.preset': unknown preset {preset!r}; "
                              f"valid: {', '.join(sorted(MODEL_PRESETS))}")
        return {**data, "models": _deep_merge(MODEL_PRESETS[preset], models)}


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_annotate_config(path: str | Path, overrides: Iterable[str] = ()) -> AnnotateConfig:
    """The validated annotation manifest at `path` with `--set` overrides and presets applied."""
    return load_config(path, overrides, AnnotateConfig)
