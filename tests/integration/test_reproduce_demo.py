"""manifests/reproduce-demo.yaml at a reduced size: synthetic builds -> two real DeepSpeed stage-1 runs
(caption-only and patch-aligned) -> `pad analyze` of those and a random projector on held-out scenes."""

import json
import math
import os

import pytest

from trainer.analysis import measure

pytestmark = pytest.mark.integration

MANIFEST = os.path.join(os.path.dirname(__file__), "..", "..", "manifests", "reproduce-demo.yaml")


def test_patch_aligned_projector_aligns_far_better_than_caption_only_and_random(tmp_path, capsys):
    out = str(tmp_path / "demo")
    overrides = [
        f"output_dir={out}",
        f"synthetic.train.out={out}/shapes-train", "synthetic.train.num_scenes=640",
        "synthetic.train.shard_size=160",
        f"synthetic.heldout.out={out}/shapes-heldout", "synthetic.heldout.num_scenes=64",
        f"train.common.data.path={out}/shapes-train", "train.common.train.max_steps=80",
        "train.common.train.save_every=80",
        f"data.path={out}/shapes-heldout", "data.num_images=64", "data.batch_size=32",
        "render.images=1", "metrics.mp_tokens=2",
    ]
    assert measure.run(MANIFEST, overrides) == 0
    printed = capsys.readouterr().out
    assert "| patch-aligned |" in printed and "Align(V, W)" in printed

    report = json.load(open(os.path.join(out, "analysis.json")))
    rows = {r["projector"]: r for r in report["rows"]}
    assert list(rows) == ["random", "caption-only", "patch-aligned"] and report["images"] == 64
    for r in rows.values():
        assert r["labels"] > 64 and math.isfinite(r["H_after"])
        assert r["delta_H"] == pytest.approx(r["H_after"] - r["H_before"])
        assert r["H_before"] == rows["random"]["H_before"]  # one frozen encoder for all rows
    pa, others = rows["patch-aligned"], [rows["caption-only"], rows["random"]]
    assert pa["align"] >= 2 * max(r["align"] for r in others), rows
    assert pa["cos_sim"] > max(r["cos_sim"] for r in others) + 0.2, rows

    # both runs went through pad pretrain (DeepSpeed) with the manifest's beta_max
    for name, beta in (("caption-only", 0.0), ("patch-aligned", 5.0)):
        lines = open(os.path.join(out, "train", name, "metrics.jsonl")).read().splitlines()
        assert len(lines) == 80 and json.loads(lines[-1])["beta"] == beta
    key = next(iter(report["rendered"]))
    for name in rows:
        for suffix in ("_tokens.png", "_masks.png", ".json"):
            assert os.path.getsize(os.path.join(out, "renders", name, key + suffix)) > 0
    assert "| caption-only |" in open(os.path.join(out, "analysis.md")).read()

    # a second run reuses the builds and the finished training runs
    assert measure.run(MANIFEST, overrides + ["render.images=0"]) == 0
    assert "reusing the finished run" in capsys.readouterr().err
