"""The projectors `pad analyze` compares: random, a stage-1 run or checkpoint, or LLaVA's mm_projector.bin.

`resolve_projector(spec, ...)` turns a manifest entry into an `nn.Module` in float32 (eval mode):
- `random`: a fresh projector of `spec.kind` (default: the manifest's model.projector), seeded;
- `train:RUN`: the run `pad analyze` trained under its output folder;
- anything else (a run or export folder, a `.safetensors`, LLaVA's `mm_projector.bin`): read by
  `trainer.export.projector_source`, the one projector reader, which also checks the widths.
"""

from __future__ import annotations

from torch import nn

from pad_pipeline.core import runtime
from trainer.analysis.config import TRAIN_PREFIX, AnalyzeConfig, ProjectorSpec, train_run_dir
from trainer.export.projector_source import check_widths, read_projector, run_projector_file, source_file
from trainer.models.projectors import build_projector


def projector_file(name: str, spec: ProjectorSpec, cfg: AnalyzeConfig) -> str | None:
    """The weights file a spec points at (None for a random projector)."""
    if spec.source == "random":
        return None
    if spec.source.startswith(TRAIN_PREFIX):
        return run_projector_file(train_run_dir(cfg, spec.source[len(TRAIN_PREFIX):]))
    return source_file(name, spec.source)


def resolve_projector(name: str, spec: ProjectorSpec, cfg: AnalyzeConfig, vision_dim: int, llm_dim: int,
                      input_tokens: int) -> nn.Module:
    path = projector_file(name, spec, cfg)
    if path is not None:
        return read_projector(name, path, spec.kind, cfg.model.projector, vision_dim, llm_dim, input_tokens)
    p = cfg.model.projector
    runtime.set_seed(spec.seed)
    projector = build_projector(spec.kind or p.kind, vision_dim, llm_dim, num_tokens=p.num_tokens,
                                depth=p.depth, hidden_size=p.hidden_size, input_tokens=input_tokens)
    projector = projector.float().eval()
    check_widths(projector, name, vision_dim, llm_dim, input_tokens)
    return projector


def describe(name: str, spec: ProjectorSpec, cfg: AnalyzeConfig) -> str:
    path = projector_file(name, spec, cfg)
    return f"random (seed {spec.seed})" if path is None else path
