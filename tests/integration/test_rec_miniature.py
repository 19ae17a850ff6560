"""`pad eval manifests/reproduce-rec.yaml` at one seed and reduced size, as a user runs it: scenes -> REC files in
the users' formats -> vision tower and LM warm-up -> two real `pad pretrain` runs (caption-only, patch-aligned)
-> three real `pad sft` REC runs (random projector, caption-only, patch-aligned), each in its child process ->
`pad eval` of the held-out scenes (Table 4's captions, Table 5's Acc@0.5) -> a rerun that trains and generates
nothing."""

import glob
import json
import os
import pickle
import time

import pytest

from pad_pipeline.cli import main
from pad_pipeline.core.config import read_yaml
from trainer.eval.rec_task import score_rows
from trainer.eval.run import score_caption_rows
from trainer.training import checkpoint

pytestmark = pytest.mark.integration

MANIFEST = os.path.join(os.path.dirname(__file__), "..", "..", "manifests", "reproduce-rec.yaml")
SEED = 3
HELDOUT, STAGE1_STEPS, STAGE2_STEPS = 12, 16, 10
SMALL = [
    f"miniature.seeds=[{SEED}]",
    "miniature.scenes.train.num_scenes=200", "miniature.scenes.train.shard_size=100",
    f"miniature.scenes.heldout.num_scenes={HELDOUT}", "miniature.warmup.steps=30",
    f"miniature.stage1.common.train.max_steps={STAGE1_STEPS}",
    f"miniature.stage1.common.train.save_every={STAGE1_STEPS}",
    f"miniature.stage2.common.train.max_steps={STAGE2_STEPS}",
    f"miniature.stage2.common.train.save_every={STAGE2_STEPS}",
    "miniature.stage2.common.train.global_batch_size=8", "miniature.stage2.common.train.micro_batch_size=8",
]
INITS = ["random", "caption-only", "patch-aligned"]


def _rows(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_one_seed_of_the_rec_miniature_trains_every_init_and_evaluates_it(tmp_path, capsys):
    out = tmp_path / "rec"
    args = ["eval", MANIFEST, "--set", f"output_dir={out}", *(x for s in SMALL for x in ("--set", s))]
    start = time.monotonic()
    assert main(args) == 0
    print(f"one seed of the REC miniature through pad eval: {time.monotonic() - start:.0f} s")
    err = capsys.readouterr().err

    # the runs: every init trained from the right projector on the warmed-up LLM, with the seed
    root = out / f"seed-{SEED}"
    (tower,), (warmup,) = (glob.glob(str(root / f"{name}-*")) for name in ("vision", "warmup"))
    for name in INITS:
        recorded = read_yaml(str(root / "stage2" / name / "config.yaml"))
        source = None if name == "random" else str(root / "stage1" / name)
        assert recorded["init"]["projector"] == source, name
        assert recorded["model"]["llm"]["checkpoint"] == warmup and recorded["train"]["seed"] == SEED
        assert recorded["model"]["vision"]["checkpoint"] == tower
        assert recorded["data"]["template"] == "vicuna_v1"
        assert checkpoint.latest_checkpoint(str(root / "stage2" / name)) is not None
        assert len(_rows(str(root / "stage2" / name / "metrics.jsonl"))) == STAGE2_STEPS
    for name, beta in (("caption-only", 0.0), ("patch-aligned", 5.0)):
        lines = _rows(str(root / "stage1" / name / "metrics.jsonl"))
        assert len(lines) == STAGE1_STEPS and lines[-1]["beta"] == beta
    refs = pickle.load(open(next(out.glob("data-*")) / "heldout" / "refs(unc).p", "rb"))
    assert refs and {r["split"] for r in refs} == {"val"}

    # the tables: each init a row, numbers as mean ± std over the one seed, each recomputed from its JSONL
    report = json.loads((out / "eval.json").read_text())
    assert report["seeds"] == [SEED]
    predictions = root / "eval" / "predictions"
    rec = report["rec"]["splits"]["shapes_heldout"]
    assert list(rec) == INITS
    for name in INITS:
        rows = _rows(str(predictions / f"rec-shapes_heldout-{name}.jsonl"))
        assert len(rows) == len(refs) and rec[name]["total"]["mean"] == len(refs)
        assert rec[name]["accuracy"] == {"mean": score_rows(rows, "image").accuracy, "std": 0.0,
                                         "values": [score_rows(rows, "image").accuracy]}
        captions = _rows(str(predictions / f"captions-all-{name}.jsonl"))
        assert len(captions) == HELDOUT and all(isinstance(r["answer"], str) for r in captions)
        scores = score_caption_rows(captions)["scores"]
        assert {k: v["mean"] for k, v in report["captions"]["scores"][name].items()} == scores
    md = (out / "eval.md").read_text()
    assert f"Mean ± std over seeds [{SEED}]." in md and "## Table 5: referring-expression comprehension" in md
    assert "| Δ patch-aligned − random |" in md and "## Table 4: captions" in md
    assert "miniature seed 3: making the runs" in err

    # a rerun trains nothing and generates nothing, and reports the same numbers
    assert main(args) == 0
    again = capsys.readouterr().err
    assert again.count("reusing") == 7 + 2 * len(INITS)  # tower, warm-up, 5 runs; captions and rec of each model
    assert json.loads((out / "eval.json").read_text())["rec"] == report["rec"]
