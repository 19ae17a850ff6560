"""Everything one seed of the REC miniature needs, made (or reused) under one output folder.

`prepare_miniature(cfg, output_dir, seed)`:
1. data, shared by all seeds (`OUTPUT/data-HASH/`, HASH: of the scenes' and expressions' settings, so other
   settings make other data, and the runs trained on the old data are not reused): the training scenes as a
   PAD build (stage 1), the same scenes' REC conversations in the 665K format + images (stage 2), the held-out
   scenes in the `refer` format (`heldout/refs(unc).p`, `heldout/instances.json`, `heldout/images/`) and as
   COCO captions (`heldout/captions_heldout.json`);
2. per seed (`OUTPUT/seed-S/`): the vision tower (`vision-HASH/`, tiny random weights with readable positions)
   and the LM warm-up (`warmup-HASH/`, the LLM), which every run then loads (HASH: of their settings, so other
   settings never reuse a stale one), the stage-1 runs
   (`stage1/NAME`, `pad pretrain`) and the stage-2 runs (`stage2/NAME`, `pad sft` from each init).
Finished parts are reused, so a second call (another table, more seeds) trains nothing twice.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from pad_pipeline.dataset.shapes import build_synthetic
from trainer.eval.miniature import vision
from trainer.eval.miniature.config import Checkpoints, MiniatureConfig, SceneSet, stage1_config, stage2_config
from trainer.eval.miniature.marker import keyed_folder
from trainer.eval.miniature.runs import run_stage
from trainer.eval.miniature.scenes import rec_scenes
from trainer.eval.miniature.warmup import is_done, scene_texts, warm_up_llm
from trainer.eval.miniature.writers import (
    write_coco_captions,
    write_rec_conversations,
    write_refer,
)

RANDOM = "random"
TRAIN_PREFIX, HELDOUT_PREFIX = "shapes_train", "shapes_heldout"


@dataclass(frozen=True)
class ReferFiles:
    refs: str           # refs(unc).p
    instances: str      # instances.json
    images: str         # image folder (instances' file_name are relative to it)
    split: str          # the refs' split to evaluate


@dataclass(frozen=True)
class MiniatureRuns:
    seed: int
    vision: str | None                  # the written vision tower (model.vision.checkpoint of every run)
    warmup: str | None                  # the warmed-up LLM folder (model.llm.checkpoint of every run)
    stage1: dict[str, str]              # stage-1 run name -> run folder (Table 4: caption the held-out scenes)
    runs: dict[str, tuple[str, str]]    # init name -> (stage-1 run folder or "random", stage-2 run folder)
    refer: ReferFiles                   # held-out REC split
    captions: str                       # held-out COCO caption JSON; images in refer.images


@dataclass(frozen=True)
class _Data:
    build: str
    conversations: str
    train_images: str
    refer: ReferFiles
    captions: str
    texts: list[str]                    # the LM warm-up's corpus


def _log(message: str) -> None:
    print(f"miniature: {message}", file=sys.stderr)


def _scene_set(scenes: SceneSet, out: str) -> SceneSet:
    return scenes.model_copy(update={"out": out})


def prepare_data(cfg: MiniatureConfig, output_dir: str) -> _Data:
    data = keyed_folder(output_dir, "data", cfg.scenes, cfg.expressions)
    train = _scene_set(cfg.scenes.train, os.path.join(data, "shapes-train"))
    result = build_synthetic(train)
    _log(f"training build {train.out}: {train.num_scenes} scenes, {result.shards_written} shards written")
    train_scenes = rec_scenes(train, cfg.expressions.train_per_image)
    conversations, train_images = os.path.join(data, "rec-train.json"), os.path.join(data, "images-train")
    n = write_rec_conversations(train_scenes, conversations, train_images, TRAIN_PREFIX, train.jpeg_quality)
    heldout = _scene_set(cfg.scenes.heldout, os.path.join(data, "heldout"))
    held_scenes = rec_scenes(heldout, cfg.expressions.heldout_per_image)
    paths = write_refer(held_scenes, heldout.out, HELDOUT_PREFIX, split=cfg.expressions.split,
                        jpeg_quality=heldout.jpeg_quality)
    captions = os.path.join(heldout.out, "captions_heldout.json")
    write_coco_captions(held_scenes, captions, paths["images"], HELDOUT_PREFIX, heldout.jpeg_quality)
    _log(f"{n} REC conversations in {conversations}; {len(held_scenes)} held-out scenes "
         f"({sum(len(s.expressions) for s in held_scenes)} expressions) in {heldout.out}")
    refer = ReferFiles(paths["refs"], paths["instances"], paths["images"], cfg.expressions.split)
    return _Data(train.out, conversations, train_images, refer, captions, scene_texts(train_scenes))


def prepare_miniature(cfg: MiniatureConfig, output_dir: str, seed: int) -> MiniatureRuns:
    """Make (or reuse) the data and every run of `seed`; returns where everything is."""
    data = prepare_data(cfg, output_dir)
    root = os.path.join(output_dir, f"seed-{seed}")
    tower, tower_folder = cfg.model.vision.checkpoint, None
    if cfg.vision_tower is not None:
        tower_folder = keyed_folder(root, "vision", cfg.vision_tower)
        if vision.is_done(tower_folder, cfg.vision_tower, seed):
            _log(f"vision tower: reusing {tower_folder}")
        else:
            vision.write_vision_tower(cfg.vision_tower, tower_folder, seed)
            _log(f"vision tower: {cfg.vision_tower.positions} positions, written to {tower_folder}")
        tower = tower_folder
    llm, warmup = cfg.model.llm.checkpoint, None
    if cfg.warmup is not None:
        warmup = keyed_folder(root, "warmup", cfg.warmup, cfg.scenes.train, cfg.expressions)  # its corpus too
        if is_done(warmup, cfg.warmup, seed):
            _log(f"LM warm-up: reusing {warmup}")
        else:
            loss = warm_up_llm(cfg.warmup, data.texts, warmup, seed)
            _log(f"LM warm-up: {cfg.warmup.steps} steps on {len(data.texts)} texts, final loss {loss:.3f}")
        llm = warmup
    checkpoints = Checkpoints(vision=tower, llm=llm)
    stage1 = {}
    for name in cfg.stage1.runs:
        out = os.path.join(root, "stage1", name)
        run_stage(stage1_config(cfg, name, out, seed, data.build, checkpoints), out, name, "pretrain")
        stage1[name] = out
    runs = {}
    for name, source in cfg.stage2.inits.items():
        out = os.path.join(root, "stage2", name)
        init = stage1[source] if source is not None else None
        run_stage(stage2_config(cfg, name, out, seed, data.conversations, data.train_images, checkpoints, init),
                  out, name, "sft")
        runs[name] = (init or RANDOM, out)
    return MiniatureRuns(seed, tower_folder, warmup, stage1, runs, data.refer, data.captions)
