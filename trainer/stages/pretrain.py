"""Stage 1 for the shared loop: frozen vision tower and LLM, trainable projector, L = caption + beta * patch.

`PretrainStage(cfg)` gives `trainer.training.loop` what stage 1 adds: the data plan (the frozen list of committed shards
of the PAD build), the model (`build_vlm`, LLM frozen), PAD batches (`PadStream` + `PatchCollator`, the caption
tokenised with the `plain` template), the micro-step (beta ramps 0 -> beta_max over the run), its metrics, the
projector beside every checkpoint (what the driver's stage-1 export reads: LLaVA's `mm_projector.bin`).
"""

from __future__ import annotations

import os
from typing import Any, Iterable

import torch
from safetensors.torch import save_file
from torch.utils.data import DataLoader

from trainer.config.pretrain import PretrainConfig, resume_identity
from trainer.data.collate import PatchCollator
from trainer.data.geometry import ProcessorSpec
from trainer.data.patches.sample import PatchSampleBuilder
from trainer.data.patches.stream import PadStream, ShardInfo, list_shards
from trainer.models.loading import LoadedVLM, build_vlm
from trainer.models.losses import total_loss
from trainer.run_layout import PROJECTOR_FILE
from trainer.training.schedule import beta_at
from trainer.training.stage import step_metrics


def loader_kwargs(num_workers: int, prefetch_factor: int) -> dict[str, Any]:
    """DataLoader options both stages use."""
    return {"num_workers": num_workers, "prefetch_factor": prefetch_factor if num_workers else None,
            "persistent_workers": False, "pin_memory": torch.cuda.is_available()}


class PretrainStage:
    name = "pretrain"
    path_fields = ("data.path", "train.output_dir")
    progress_keys = ("caption_loss", "patch_loss", "beta")

    def __init__(self, cfg: PretrainConfig):
        self.cfg = cfg

    @classmethod
    def from_config(cls, data: dict[str, Any]) -> "PretrainStage":
        return cls(PretrainConfig.model_validate(data))

    def identity(self) -> dict[str, Any]:
        return resume_identity(self.cfg)

    def plan(self) -> dict[str, Any]:
        shards = list_shards(self.cfg.data.path)
        return {"shards": [s.__dict__ for s in shards], "num_samples": sum(s.num_samples for s in shards)}

    def build(self, dtype: torch.dtype) -> LoadedVLM:
        return build_vlm(self.cfg.model, dtype=dtype, seed=self.cfg.train.seed)

    def batches(self, vlm: LoadedVLM, plan: dict[str, Any], rank: int, world: int, start: int) -> Iterable:
        cfg = self.cfg
        spec = ProcessorSpec.from_processor(vlm.processor, cfg.data.image_aspect)
        builder = PatchSampleBuilder(vlm.tokenizer, spec, vlm.token_grid,
                                     max_caption_tokens=cfg.model.llm.max_length - vlm.num_tokens - 1,
                                     min_coverage=cfg.data.min_coverage, max_regions=cfg.data.max_regions)
        stream = PadStream([ShardInfo(**s) for s in plan["shards"]], builder, rank=rank, world=world,
                           seed=cfg.train.seed, shuffle=cfg.data.shuffle, start=start,
                           micro_batch=cfg.train.micro_batch_size)
        return DataLoader(stream, batch_size=cfg.train.micro_batch_size,
                          collate_fn=PatchCollator(vlm.tokenizer.pad_token_id or 0),
                          **loader_kwargs(cfg.data.num_workers, cfg.data.prefetch_factor))

    def micro_step(self, engine: Any, batch: dict[str, Any], step: int, total: int) -> dict[str, float]:
        beta = beta_at(step, total, self.cfg.train.beta_max)
        out = engine.forward(batch)
        engine.backward(total_loss(out["caption_loss"], out["patch_loss"], beta))
        engine.step()
        return {"caption_loss": out["caption_loss"].item(), "patch_loss": out["patch_loss"].item(), "micro_steps": 1,
                "regions": batch["regions"].item(), "skipped_regions": batch["skipped_regions"].item()}

    def row(self, sums: dict[str, float], step: int, total: int) -> dict[str, Any]:
        m = step_metrics(sums, {"caption_loss": "micro_steps", "patch_loss": "micro_steps"})
        beta = beta_at(step, total, self.cfg.train.beta_max)
        return {"caption_loss": m["caption_loss"], "patch_loss": m["patch_loss"], "beta": beta,
                "loss": m["caption_loss"] + beta * m["patch_loss"], "regions": int(m["regions"]),
                "skipped_regions": int(m["skipped_regions"])}

    def save_weights(self, engine: Any, vlm: LoadedVLM, directory: str, rank: int) -> None:
        state = engine.full_state_dict(engine.module.projector)
        if rank == 0:
            save_file({k: v.contiguous() for k, v in state.items()}, os.path.join(directory, PROJECTOR_FILE))

