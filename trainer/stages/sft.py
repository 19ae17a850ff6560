"""Stage 2 for the shared loop: vision tower frozen, projector and LLM trained on conversations.

`SftStage(cfg)` gives `trainer.training.loop` what stage 2 adds: the data plan (the conversation index the driver
built beside the run, `trainer.data.chat.index`), the model (`build_vlm` with the LLM trainable, the
projector initialised from a stage-1 result by `trainer.export.projector_source`), conversation
batches (`SftStream` + `SftCollator`), the micro-step (LM loss on the template's answer tokens; bad samples
are a named error or a counted skip), its metrics, and the projector and the whole LLM as safetensors beside
every checkpoint (what `trainer.export.from_run` and the exports read).
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable

import torch
from safetensors.torch import save_file
from torch.utils.data import DataLoader

from pad_pipeline.core.errors import PadError
from trainer.config.sft import SftConfig, sft_resume_identity
from trainer.data.chat.index import index_matches, index_path, load_index
from trainer.data.chat.sample import SftSampleBuilder
from trainer.data.chat.stream import SftStream
from trainer.data.chat.templates import get_template
from trainer.data.chat.tokens import check_template_tokens
from trainer.data.collate import SftCollator
from trainer.data.geometry import ProcessorSpec
from trainer.export.pad_format import projector_metadata
from trainer.export.projector_source import read_projector, source_file
from trainer.models.loading import LoadedVLM, build_vlm
from trainer.models.projectors import input_tokens
from trainer.run_layout import LLM_FILE, PROJECTOR_FILE
from trainer.stages.pretrain import loader_kwargs
from trainer.training.stage import step_metrics


def init_projector(vlm: LoadedVLM, cfg: SftConfig) -> None:
    """Load `init.projector` (a run or export folder, a `.safetensors` or LLaVA's `mm_projector.bin`, read by
    `trainer.export.projector_source`) into the freshly built projector."""
    source = cfg.init.projector
    assert source is not None  # the stage calls this only when init.projector is set
    vcfg, model = vlm.model.vision.config, vlm.model
    inputs = input_tokens(vlm.vision_grid, cfg.model.vision.drop_cls)
    loaded = read_projector("init", source_file("init", source), None, cfg.model.projector, vcfg.hidden_size,
                            model.llm.config.hidden_size, inputs)
    try:
        model.projector.load_state_dict(loaded.state_dict())
    except RuntimeError:
        raise PadError(f"field 'init.projector': {source} is a {type(loaded).__name__}, not the "
                       f"{cfg.model.projector.kind} projector of model.projector.kind") from None


def projector_meta(vlm: LoadedVLM, cfg: SftConfig) -> dict[str, int | str]:
    """The metadata `trainer.export.pad_format.load_projector` rebuilds a projector from."""
    vision, p = vlm.model.vision.config, cfg.model.projector
    return projector_metadata(p.kind, vision.hidden_size, vlm.model.llm.config.hidden_size, p.num_tokens, p.depth,
                              p.hidden_size, input_tokens(vlm.vision_grid, cfg.model.vision.drop_cls))


class SftStage:
    name = "sft"
    path_fields = ("data.path", "data.image_folder", "init.projector", "train.output_dir")
    progress_keys = ("loss", "skipped_samples")

    def __init__(self, cfg: SftConfig):
        self.cfg = cfg
        self.template = get_template(cfg.data.template)

    @classmethod
    def from_config(cls, data: dict[str, Any]) -> "SftStage":
        return cls(SftConfig.model_validate(data))

    def identity(self) -> dict[str, Any]:
        return sft_resume_identity(self.cfg)

    def plan(self) -> dict[str, Any]:
        path = index_path(self.cfg.train.output_dir)
        if not index_matches(path, self.cfg.data.path):
            raise PadError(f"{path}: missing or built from another {self.cfg.data.path}; start runs with `pad sft`")
        index = load_index(path)
        return {"index": path, "num_samples": int(index.valid.sum()), "entries": len(index),
                "fingerprint": index.meta.get("fingerprint")}

    def build(self, dtype: torch.dtype) -> LoadedVLM:
        vlm = build_vlm(self.cfg.model, dtype=dtype, seed=self.cfg.train.seed, train_llm=True)
        check_template_tokens(vlm.tokenizer, self.template)
        if self.cfg.init.projector:
            init_projector(vlm, self.cfg)
        return vlm

    def batches(self, vlm: LoadedVLM, plan: dict[str, Any], rank: int, world: int, start: int) -> Iterable:
        cfg = self.cfg
        spec = ProcessorSpec.from_processor(vlm.processor, cfg.data.image_aspect)
        builder = SftSampleBuilder(vlm.tokenizer, self.template, spec, cfg.data.image_folder,
                                   cfg.model.llm.max_length, vlm.image_tokens)
        stream = SftStream(cfg.data.path, plan["index"], builder, rank=rank, world=world, seed=cfg.train.seed,
                           shuffle=cfg.data.shuffle, group_by_modality=cfg.data.group_by_modality_length,
                           start=start, micro_batch=cfg.train.micro_batch_size)
        collate = SftCollator(vlm.tokenizer.pad_token_id or 0, spec.crop, vlm.image_tokens)
        return DataLoader(stream, batch_size=cfg.train.micro_batch_size, collate_fn=collate,
                          **loader_kwargs(cfg.data.num_workers, cfg.data.prefetch_factor))

    def micro_step(self, engine: Any, batch: dict[str, Any], step: int, total: int) -> dict[str, float]:
        bad = batch.pop("bad")
        if bad and self.cfg.data.on_bad_sample == "error":
            b = bad[0]
            raise PadError(f"{self.cfg.data.path}: sample {b.id}: {b.reason} ({b.detail}); fix it, list all with "
                           f"`pad sft MANIFEST --check`, or set data.on_bad_sample: skip")
        loss = engine.forward(batch, with_patch_loss=False)["caption_loss"]
        engine.backward(loss)
        engine.step()
        trained = int(batch["target_tokens"]) > 0
        return {"loss": loss.item() if trained else 0.0, "loss_batches": int(trained),
                "samples": batch["samples"].item(), "skipped_samples": batch["skipped_samples"].item(),
                "target_tokens": batch["target_tokens"].item(), "tokens": batch["tokens"].item(),
                "positions": batch["positions"].item()}

    def row(self, sums: dict[str, float], step: int, total: int) -> dict[str, Any]:
        m = step_metrics(sums, {"loss": "loss_batches"})
        counts = {k: int(m[k]) for k in ("samples", "skipped_samples", "target_tokens", "tokens", "positions")}
        return {"loss": m["loss"], **counts}

    def save_weights(self, engine: Any, vlm: LoadedVLM, directory: str, rank: int) -> None:
        module = engine.module
        projector = engine.full_state_dict(module.projector, keep=rank == 0)
        llm = engine.full_state_dict(module.llm, keep=rank == 0)
        if rank == 0:
            meta = json.dumps(projector_meta(vlm, self.cfg))
            save_file({k: v.contiguous() for k, v in projector.items()},
                      os.path.join(directory, PROJECTOR_FILE), metadata={"pad_projector": meta})
            save_file(_untied(llm), os.path.join(directory, LLM_FILE))



def _untied(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous tensors, shared storage cloned (safetensors refuses aliases; tied embeddings)."""
    seen: set[int] = set()
    out = {}
    for k, v in state.items():
        ptr = v.data_ptr()
        out[k] = v.clone().contiguous() if ptr in seen else v.contiguous()
        seen.add(ptr)
    return out


