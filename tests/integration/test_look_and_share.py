"""Looking at and sharing the demo build, built here by the real `pad annotate` (local Ray, tiny models):
`pad show --grid` against the trainer's token function, `pad stats` against counts made from the tars,
the `--html` page in a real headless Chromium, `pad publish --dry-run` read back by datasets and
webdataset, and an upload to a local stand-in for the Hub, killed mid-way and resumed."""

import io
import json
import math
import os
import subprocess
import tarfile
from collections import Counter

import numpy as np
import pytest
import webdataset as wds
from browser import open_page
from fake_hub import FakeHub
from helpers import REPO, pad_command, subprocess_env
from PIL import Image
from transformers import CLIPImageProcessor

from pad_pipeline.cli import main
from pad_pipeline.dataset.reader import iter_committed_samples
from pad_pipeline.dataset.rle import decode_mask
from pad_pipeline.tools.show import TINT, GridLayout, label_colour, mark_colour
from trainer.data.geometry import ImageGeometry, ProcessorSpec
from trainer.data.patches.masks import rle_token_masks

pytestmark = pytest.mark.integration
TOKEN = "hf_padTestToken0123456789secret"


@pytest.fixture(scope="module")
def demo(local_ray, tmp_path_factory):
    out = tmp_path_factory.mktemp("look") / "demo"
    cwd = os.getcwd()
    os.chdir(REPO)  # the demo manifest's paths are relative to the repository
    try:
        assert main(["annotate", "manifests/demo.yaml", "--out", str(out), "--set", "publish.max_files_per_commit=5",
                     "--set", "publish.license=cc-by-4.0", "--set", "publish.source=the bundled demo scenes"]) == 0
    finally:
        os.chdir(cwd)
    return out


def _demo_samples(out):
    return {s.key: s for s in iter_committed_samples(str(out))}


def test_show_grid_marks_the_trainers_tokens_and_tints_masks(demo, tmp_path, capsys):
    samples = _demo_samples(demo)
    masks_of = {k: np.stack([decode_mask(lb.rle_mask, s.record.height, s.record.width).astype(bool)
                             for lb in s.record.labels]) for k, s in samples.items()}
    key = max(masks_of, key=lambda k: (~masks_of[k].any(0)).sum())  # the sample with most unmasked pixels
    sample, masks = samples[key], masks_of[key]
    png_path = tmp_path / "grid.png"
    assert main(["show", str(demo), key, "--png", str(png_path), "--grid"]) == 0
    assert "24x24 tokens" in capsys.readouterr().out
    png = np.asarray(Image.open(png_path).convert("RGB"))
    r = sample.record
    assert png.shape[:2] == (r.height, r.width)
    # the trainer's functions, called here: CLIP ViT-L/14-336 geometry, the half-area rule
    spec = ProcessorSpec.from_processor(CLIPImageProcessor(size={"shortest_edge": 336},
                                                           crop_size={"height": 336, "width": 336}))
    geometry = ImageGeometry.plan(r.width, r.height, spec)
    expected = rle_token_masks([lb.rle_mask for lb in r.labels], geometry, 24)
    layout, slots = GridLayout.of(geometry, 24), math.ceil(math.sqrt(len(r.labels)))
    for i in range(len(r.labels)):
        marked = [t for t in range(576) if (m := layout.mark(t, i, slots)) and tuple(png[m[0], m[1]]) == mark_colour(i)]
        assert marked == np.flatnonzero(expected[i].numpy()).tolist(), f"label {i}"
    assert expected.any()
    original = np.asarray(Image.open(io.BytesIO(sample.image)).convert("RGB")).astype(np.float32)
    changed = np.any(png != original, axis=2)
    covered = masks.sum(0)
    assert changed[covered > 0].all()  # every mask pixel is tinted
    lines = np.r_[False, np.diff(layout.rows) != 0][:, None] | np.r_[False, np.diff(layout.cols) != 0][None, :]
    plain = (layout.rows >= 0)[:, None] & (layout.cols >= 0)[None, :] & ~lines
    exact = [np.all(png[m] == ((1 - TINT) * original + TINT * np.array(label_colour(i), np.float32)).round()[m], 1)
             for i in range(len(masks)) if (m := masks[i] & (covered == 1) & plain).any()]
    assert np.concatenate(exact).mean() > 0.5   # in the label's colour, where no box, text or dot is drawn
    assert (~changed[(covered == 0) & plain]).mean() > 0.5   # what no mask covers keeps its pixels


def test_stats_equal_counts_from_the_tars(demo, capsys):
    assert main(["stats", str(demo), "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    samples = regions = empty = 0
    tags, failures, per_image, scores = Counter(), Counter(), Counter(), []
    for tar_path in sorted(demo.glob("pad-*.tar")):
        record = json.loads(tar_path.with_suffix(".json").read_text())
        failures.update(v.split(":")[0] for v in record["failures"].values())
        with tarfile.open(tar_path) as tar:
            for rec in (json.loads(tar.extractfile(m).read()) for m in tar.getmembers() if m.name.endswith(".json")):
                samples, regions, empty = samples + 1, regions + len(rec["labels"]), empty + (not rec["labels"])
                per_image[len(rec["labels"])] += 1
                tags.update(set(rec["tags"]))
                scores += [lb["mask_score"] for lb in rec["labels"]]
    assert (j["samples"], j["regions"], j["images_without_regions"]) == (samples, regions, empty) == (12, 96, 0)
    assert {i: c for i, c in enumerate(j["regions_per_image"]["counts"]) if c} == dict(per_image)
    assert j["failures"]["by_reason"] == dict(failures) == {"empty_file": 1} and j["inputs"] == 13
    assert j["tags"]["unique"] == len(tags) and j["tags"]["long_tail"] == sum(c <= 5 for c in tags.values())
    assert j["mask_score"]["mean"] == pytest.approx(np.mean(scores), abs=1e-6)


def test_html_page_loads_in_headless_chromium_with_its_gallery(demo, tmp_path):
    page = tmp_path / "demo.html"
    assert main(["stats", str(demo), "--html", str(page), "--gallery", "6"]) == 0
    gallery = "Array.from(document.querySelectorAll('#gallery img'))"
    report = open_page(str(page), evaluate=f"""({{
        loaded: {gallery}.filter(i => i.complete && i.naturalWidth > 0).length,
        plots: Array.from(document.querySelectorAll('.plots img')).filter(i => i.naturalWidth > 0).length,
        box: (r => [r.left, r.top, r.width, r.height])(document.getElementById('gallery').getBoundingClientRect()),
    }})""")
    assert report.errors == [] and report.requests == []
    assert report.value["loaded"] == 6 and report.value["plots"] == 6
    shot = np.asarray(Image.open(io.BytesIO(report.screenshot)).convert("L")).astype(np.float32)
    assert shot.std() > 20   # not blank
    left, top, width, height = (int(v) for v in report.value["box"])
    region = shot[top:top + height, left:left + width]
    assert region.size > 100_000 and region.std() > 20   # the gallery is drawn, not empty boxes


def test_dry_run_reads_back_with_datasets_and_webdataset(demo, tmp_path, capsys):
    import datasets

    repo = tmp_path / "repo"
    assert main(["publish", str(demo), "--repo-id", "me/pad-demo", "--dry-run", str(repo)]) == 0
    assert not (demo / "README.md").exists() and (repo / "README.md").exists()
    committed = _demo_samples(demo)
    rows = datasets.load_dataset(str(repo), split="train").cast_column("jpg", datasets.Image(decode=False))
    assert len(rows) == len(committed) == 12
    for row in rows:
        s = committed[row["__key__"]]
        assert row["json"] == s.record.to_json() and row["jpg"]["bytes"] == s.image
    streamed = datasets.load_dataset("webdataset", data_files={"train": str(repo / "pad-*.tar")}, split="train",
                                     streaming=True)
    assert sorted(r["__key__"] for r in streamed) == sorted(committed)
    urls = sorted(str(p) for p in repo.glob("pad-*.tar"))
    for row in wds.WebDataset(urls, shardshuffle=False):
        assert json.loads(row["json"]) == committed[row["__key__"]].record.to_json()


def _publish(hub, home, demo):
    env = {**subprocess_env(), "HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN, "HF_HUB_DISABLE_XET": "1",
           "HF_HUB_OFFLINE": "0", "HF_HOME": str(home), "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    return subprocess.Popen(pad_command("publish", str(demo), "--repo-id", "me/pad-demo"), env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_upload_resumes_without_resending_finished_files(demo, tmp_path):
    hub, home = FakeHub(), tmp_path / "hf-home"
    try:
        hub.hang_on_commit = 2   # 21 data files in commits of 5: the client dies inside the second
        first = _publish(hub, home, demo)
        assert hub.commit_arrived.wait(120), first.communicate(timeout=30)
        first.kill()
        out1, err1 = first.communicate(timeout=30)
        hub.release()
        assert len(hub.commits) == 1 and len(hub.commits[0]) == 5
        finished, sent_before, start = set(hub.commits[0]), dict(hub.puts), len(hub.requests)
        second = _publish(hub, home, demo)
        out2, err2 = second.communicate(timeout=180)
        assert second.returncode == 0, err2
    finally:
        hub.close()
    assert "5 files already there" in err2 and sent_before  # run 1 had sent the LFS content of commit 2
    assert max(hub.puts.values()) == 1   # no content sent twice, neither finished files nor commit 2's
    resent = {p for c in hub.commits[1:] for p in c} & finished
    preuploaded = {f["path"] for q in hub.requests[start:] if q["path"].endswith("/preupload/main")
                   for f in json.loads(q["body"])["files"]}
    assert not resent and not preuploaded & finished
    assert hub.commits[-1] == ["README.md"]
    for name in ("pad-000000.tar", "pad-000003.tar", "pad-000002.parquet", "pad-000001.json", "config.yaml"):
        assert hub.files[name]["data"] == (demo / name).read_bytes()
    # the token went out only as the client's Authorization header: never in a file, log line or body
    assert {q["authorization"] for q in hub.requests if q["path"].startswith("/api/repos")} == {f"Bearer {TOKEN}"}
    assert all(TOKEN.encode() not in q["body"] for q in hub.requests)
    assert TOKEN not in out1 + err1 + out2 + err2
    for folder in (demo, home):
        for root, _, names in os.walk(folder):
            for name in names:
                assert TOKEN.encode() not in open(os.path.join(root, name), "rb").read(), name
