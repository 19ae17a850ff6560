"""manifests/reproduce-rec.yaml at one seed and reduced size: scenes -> REC files in the users' formats ->
LM warm-up -> two real `pad pretrain` runs (caption-only, patch-aligned) -> three real `pad sft` REC runs
(random projector, caption-only, patch-aligned), each in its child process, then all reused on a rerun."""

import json
import os
import pickle
import time

import pytest

from pad_pipeline.core.config import read_yaml
from trainer.eval.miniature.config import load_miniature_manifest
from trainer.eval.miniature.prepare import RANDOM, prepare_miniature
from trainer.training import checkpoint

pytestmark = pytest.mark.integration

MANIFEST = os.path.join(os.path.dirname(__file__), "..", "..", "manifests", "reproduce-rec.yaml")
SMALL = [
    "miniature.scenes.train.num_scenes=400", "miniature.scenes.train.shard_size=200",
    "miniature.scenes.heldout.num_scenes=24", "miniature.warmup.steps=60",
    "miniature.stage1.common.train.max_steps=30", "miniature.stage1.common.train.save_every=30",
    "miniature.stage2.common.train.max_steps=20", "miniature.stage2.common.train.save_every=20",
    "miniature.stage2.common.train.global_batch_size=8", "miniature.stage2.common.train.micro_batch_size=8",
]


def test_one_seed_of_the_rec_miniature_trains_every_init_and_is_reused(tmp_path, capsys):
    cfg = load_miniature_manifest(MANIFEST, SMALL).miniature
    out = str(tmp_path / "rec")
    start = time.monotonic()
    runs = prepare_miniature(cfg, out, seed=3)
    took = time.monotonic() - start
    print(f"one seed of the REC miniature: {took:.0f} s")

    assert list(runs.runs) == ["random", "caption-only", "patch-aligned"] and runs.seed == 3
    assert runs.runs["random"][0] == RANDOM and runs.runs["patch-aligned"][0] == runs.stage1["patch-aligned"]
    for name, (init, stage2) in runs.runs.items():
        recorded = read_yaml(os.path.join(stage2, "config.yaml"))
        assert recorded["init"]["projector"] == (None if init == RANDOM else init), name
        assert recorded["model"]["llm"]["checkpoint"] == runs.warmup and recorded["train"]["seed"] == 3
        assert recorded["data"]["template"] == "vicuna_v1" and checkpoint.latest_checkpoint(stage2) is not None
        lines = open(os.path.join(stage2, "metrics.jsonl")).read().splitlines()
        assert len(lines) == 20 and all(json.loads(line)["loss"] > 0 for line in lines)
    for name, beta in (("caption-only", 0.0), ("patch-aligned", 5.0)):
        lines = open(os.path.join(runs.stage1[name], "metrics.jsonl")).read().splitlines()
        assert len(lines) == 30 and json.loads(lines[-1])["beta"] == beta
    refs = pickle.load(open(runs.refer.refs, "rb"))
    assert refs and {r["split"] for r in refs} == {"val"} and os.path.isdir(runs.refer.images)
    assert len(json.load(open(runs.captions))["images"]) == 24

    capsys.readouterr()
    again = prepare_miniature(cfg, out, seed=3)
    assert again == runs and capsys.readouterr().err.count("reusing") == 6  # warm-up + 5 runs
