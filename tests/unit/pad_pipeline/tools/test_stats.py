"""`pad stats`: fixed-bin histograms against numpy, and a build's numbers against counts made here from
its tars and records with tarfile + json (not PAD's reader)."""

import io
import json
import tarfile
from collections import Counter

import numpy as np
import pytest

from pad_pipeline.cli import main
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.reader import read_record
from pad_pipeline.dataset.records import Label, Sample, SampleRecord
from pad_pipeline.dataset.synthetic import random_field_build
from pad_pipeline.dataset.writer import write_shard
from pad_pipeline.tools.stats import Histogram, compute_stats, failure_reason, top_tags


def test_histogram_matches_numpy_and_counts_outside():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.uniform(-0.2, 1.2, 500), [0.0, 1.0, 0.5]])
    h = Histogram(0.0, 1.0, 20)
    h.add(values[:100])
    h.add(values[100:])
    inside = values[(values >= 0) & (values <= 1)]
    assert h.counts.tolist() == np.histogram(inside, bins=20, range=(0, 1))[0].tolist()  # numpy: last bin closed
    assert (h.under, h.over) == (int((values < 0).sum()), int((values > 1).sum()))
    assert h.n == values.size and h.mean == pytest.approx(values.mean()) and h.max == values.max()


def _independent_counts(out):
    """Counts made straight from the files: tar members with tarfile, records with json."""
    counts = {"samples": 0, "regions": 0, "empty": 0, "per_image": Counter(), "tags": Counter(), "areas": [],
              "box": [], "failures": Counter(), "bytes": 0}
    for tar_path in sorted(out.glob("pad-*.tar")):
        record = json.loads(tar_path.with_suffix(".json").read_text())
        counts["failures"].update(r.split(":")[0] for r in record["failures"].values())
        counts["bytes"] += tar_path.stat().st_size
        with tarfile.open(tar_path) as tar:
            for m in tar.getmembers():
                if m.name.endswith(".json"):
                    rec = json.loads(tar.extractfile(m).read())
                    w, h = rec["size"]
                    counts["samples"] += 1
                    counts["regions"] += len(rec["labels"])
                    counts["empty"] += not rec["labels"]
                    counts["per_image"][len(rec["labels"])] += 1
                    counts["tags"].update(set(rec["tags"]))
                    counts["areas"] += [lb["area"] / (w * h) for lb in rec["labels"]]
                    counts["box"] += [lb["score"] for lb in rec["labels"]]
    return counts


def _build_with_failures_and_empty_samples(tmp_path):
    out = tmp_path / "b"
    random_field_build(str(out), num_samples=12, shard_size=5, min_side=16, max_side=24)
    # shard 2 rewritten: one sample without regions, two named failures
    empty = Sample("k_empty", b"\xff\xd8", SampleRecord("e.jpg", [4, 4], "", ["dog", "rare tag"], []))
    one = Sample("k_one", b"\xff\xd8", SampleRecord("o.jpg", [4, 4], "", ["dog"], [
        Label("dog", [0, 0, 2, 2], 0.7, 0.8, 4, "04")]))
    old = read_record(str(out), 2)  # the rewritten shard keeps its plan identity, so it stays committed
    identity = {k: getattr(old, k) for k in ("plan_id", "inputs_digest", "config_hash")}
    write_shard(str(out), 2, [empty, one], {"bad.jpg": "decode_error", "big.png": "too_large: 20000x20000"},
                identity)
    return out


def test_numbers_equal_counts_from_the_tars(tmp_path, capsys):
    out = _build_with_failures_and_empty_samples(tmp_path)
    ref = _independent_counts(out)
    assert main(["stats", str(out), "--json"]) == 0
    j = json.loads(capsys.readouterr().out)
    assert (j["samples"], j["regions"], j["images_without_regions"]) == (ref["samples"], ref["regions"], ref["empty"])
    per_image = j["regions_per_image"]["counts"]
    assert {i: c for i, c in enumerate(per_image) if c} == dict(ref["per_image"])
    assert j["mask_area_share"]["counts"] == np.histogram(ref["areas"], bins=50, range=(0, 1))[0].tolist()
    assert j["mask_area_share"]["mean"] == pytest.approx(np.mean(ref["areas"]), abs=1e-6)
    assert j["box_score"]["mean"] == pytest.approx(np.mean(ref["box"]), abs=1e-6)
    assert j["tags"]["unique"] == len(ref["tags"])
    assert j["tags"]["long_tail"] == sum(1 for c in ref["tags"].values() if c <= 5)
    assert j["tags"]["top"] == [[t, c] for t, c in sorted(ref["tags"].items(), key=lambda tc: (-tc[1], tc[0]))]
    assert j["failures"] == {"total": 2, "by_reason": dict(ref["failures"])} == {
        "total": 2, "by_reason": {"decode_error": 1, "too_large": 1}}
    assert j["inputs"] == ref["samples"] + 2 and j["shards"]["bytes"]["total"] == ref["bytes"]
    assert j["shards"]["committed"] == 3 and j["shards"]["samples"]["min"] == 2


def test_memory_state_does_not_grow_with_samples(tmp_path):
    small, large = tmp_path / "s", tmp_path / "l"
    random_field_build(str(small), num_samples=10, shard_size=10, min_side=16, max_side=20)
    random_field_build(str(large), num_samples=60, shard_size=10, min_side=16, max_side=20)
    a, b = compute_stats(str(small)), compute_stats(str(large))
    assert b.samples == 6 * a.samples
    # the only per-sample-sized state is flushed per shard; histograms keep their bin count
    assert all(not v for v in b._buffer.values())
    assert b.mask_area_share.counts.size == a.mask_area_share.counts.size == 50


def test_ties_are_ordered_by_name_and_reasons_lose_their_detail():
    assert top_tags(Counter({"b": 2, "a": 2, "c": 3}), 2) == [["c", 3], ["a", 2]]
    assert failure_reason("too_large: 20000x20000 pixels") == "too_large"
    assert failure_reason("empty_file") == "empty_file"


def test_a_build_with_nothing_committed_is_a_one_line_error(tmp_path):
    out = tmp_path / "b"
    random_field_build(str(out), num_samples=4, shard_size=2, min_side=16, max_side=20)
    for p in out.glob("pad-*.json"):
        p.unlink()
    with pytest.raises(PadError, match="no committed shard"):
        compute_stats(str(out))


def test_text_summary_names_the_numbers(tmp_path, capsys):
    out = _build_with_failures_and_empty_samples(tmp_path)
    assert main(["stats", str(out)]) == 0
    text = capsys.readouterr().out
    assert "samples of 14 inputs" in text and "decode_error 1" in text and "images with no region: 1" in text
    assert io.StringIO(text).readline().startswith(f"build {out}")
