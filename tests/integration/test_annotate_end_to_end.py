"""`pad annotate` on a real local Ray instance with the real (tiny-random) model classes."""

import io
import json
import shutil

import pytest
import webdataset as wds
from helpers import good_images, make_bad_corpus, write_manifest
from PIL import Image
from pycocotools import mask as mask_utils

from pad_pipeline.annotate.config import load_annotate_config
from pad_pipeline.dataset.reader import committed_records, committed_shard_urls
from pad_pipeline.ray.driver import run_annotate
from pad_pipeline.tools.status import build_status, verify_build


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    names = good_images(folder, 7)
    expected = make_bad_corpus(folder)
    expected.update({name: "sample" for name in names})
    return folder, expected


@pytest.fixture(scope="module")
def build(local_ray, corpus, tmp_path_factory):
    folder, _ = corpus
    tmp = tmp_path_factory.mktemp("build")
    manifest = write_manifest(tmp / "m.yaml", folder, tmp / "out", shard_size=5)
    summary = run_annotate(load_annotate_config(str(manifest)))
    return tmp, manifest, summary


def test_every_input_ends_exactly_once(build, corpus):
    tmp, _, summary = build
    folder, expected = corpus
    assert summary.ok and len(summary.committed) == 4
    sample_ids, failures = [], {}
    for record in committed_records(str(tmp / "out")).values():
        failures.update(record.failures)
    for row in wds.WebDataset(committed_shard_urls(str(tmp / "out")), shardshuffle=False):
        sample_ids.append(json.loads(row["json"])["image_id"])
    assert len(sample_ids) == len(set(sample_ids))
    assert set(sample_ids) | set(failures) == set(expected) and not set(sample_ids) & set(failures)
    for name, outcome in expected.items():
        if outcome == "sample":
            assert name in sample_ids, name
        else:
            # the reason, then its detail where intake has one (e.g. "too_large: 20000x20000 pixels ...")
            assert failures[name].split(":", 1)[0] == outcome, name


def test_round_trip_through_webdataset_and_pycocotools(build):
    tmp, _, _ = build
    keys, n_labels = [], 0
    for row in wds.WebDataset(committed_shard_urls(str(tmp / "out")), shardshuffle=False):
        keys.append(row["__key__"])
        rec = json.loads(row["json"])
        w, h = rec["size"]
        assert Image.open(io.BytesIO(row["jpg"])).size == (w, h)
        assert rec["tags"] and len(rec["tags"]) == len(rec["tag_scores"])
        for label in rec["labels"]:
            n_labels += 1
            m = mask_utils.decode({"size": [h, w], "counts": label["rle_mask"].encode()})
            assert m.shape == (h, w) and int(m.sum()) == label["area"] > 0
            x0, y0, x1, y1 = label["bbox"]
            assert 0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h
            assert label["tag"] in rec["tags"]
    assert n_labels > 0
    assert len(keys) == len(set(keys)) and all("." not in k for k in keys)


def test_status_and_verify(build):
    tmp, _, summary = build
    status = build_status(str(tmp / "out"))
    assert status["states"] == {"committed": 4}
    assert status["samples"] == summary.samples and status["regions"] == summary.regions
    assert status["failure_reasons"]["too_large"] == 1
    report = verify_build(str(tmp / "out"))
    assert report.problems == [] and report.samples == summary.samples and report.masks == summary.regions


def test_rerun_skips_and_rebuild_is_byte_identical(build, tmp_path):
    tmp, manifest, _ = build
    again = run_annotate(load_annotate_config(str(manifest)))
    assert again.skipped == 4 and again.committed == []
    fresh = run_annotate(load_annotate_config(str(manifest)), out=str(tmp_path / "fresh"))
    assert fresh.ok
    for i in range(4):
        name = f"pad-{i:06d}.tar"
        assert (tmp / "out" / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes(), name


def test_verify_detects_damage(build, tmp_path):
    tmp, _, _ = build
    damaged = tmp_path / "damaged"
    shutil.copytree(tmp / "out", damaged)
    tar = damaged / "pad-000000.tar"
    data = bytearray(tar.read_bytes())
    data[700] ^= 0xFF
    tar.write_bytes(bytes(data))
    assert any("sha256" in p for p in verify_build(str(damaged)).problems)


def test_hugging_face_datasets_reads_the_build(build, tmp_path):
    from datasets import load_dataset

    tmp, _, summary = build
    ds = load_dataset("webdataset", data_files={"train": committed_shard_urls(str(tmp / "out"))},
                      split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert len(ds) == summary.samples
    row = ds[0]
    assert row["jpg"].size == tuple(row["json"]["size"])
    assert {"image_id", "caption", "tags", "labels"} <= set(row["json"])
