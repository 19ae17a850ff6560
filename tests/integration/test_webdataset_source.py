"""`pad annotate` over a WebDataset source (an uncompressed tar and a .tar.gz of the demo images) on real
local Ray: the same samples as the image_dir build of the same images, tar members read by byte range,
the .tar.gz kept in one shard, and a rerun that opens no tar."""

import json
import tarfile
from pathlib import Path

import pytest
import yaml

from pad_pipeline.annotate.sources.base import parse_tar_location
from pad_pipeline.cli import main
from pad_pipeline.dataset.reader import committed_records, iter_committed_samples, load_plan, read_shard_inputs

pytestmark = pytest.mark.integration

DEMO = Path(__file__).resolve().parents[2] / "manifests" / "demo"


def _manifest(path: Path, source: dict, out: Path) -> str:
    path.write_text(yaml.safe_dump({
        "source": source, "output": {"path": str(out), "shard_size": 4}, "models": {"preset": "tiny-random"},
        # batch size 1: an annotation must not depend on its batch neighbours, whatever the shard cut
        "runner": {"annotators": 1, "batch_size": 1, "torch_threads": 1}}))
    return str(path)


def _demo_tars(folder: Path) -> str:
    captions = {json.loads(line)["file"]: json.loads(line)["caption"]
                for line in (DEMO / "captions.jsonl").read_text().splitlines() if line.strip()}
    images = sorted(p for p in (DEMO / "images").iterdir() if not p.name.startswith("."))
    for name, mode, chunk in (("00000.tar", "w", images[:7]), ("00001.tar.gz", "w:gz", images[7:])):
        with tarfile.open(folder / name, mode) as tar:
            for image in chunk:
                tar.add(image, arcname=image.name)
                caption = folder / f"{image.stem}.txt"
                caption.write_text(captions.get(image.name, ""))
                tar.add(caption, arcname=caption.name)
    return str(folder / "{00000.tar,00001.tar.gz}")


def _by_stem(out: Path) -> tuple[dict, dict]:
    """Samples (stored JPEG, record without its image id) and failures, by image file stem."""
    samples = {}
    for s in iter_committed_samples(str(out)):
        record = s.record.to_json()
        stem = Path(record.pop("image_id")).name.split(".")[0]
        samples[stem] = (s.image, record)
    failures = {Path(name).name.split(".")[0]: reason
                for r in committed_records(str(out)).values() for name, reason in r.failures.items()}
    return samples, failures


def test_webdataset_build_equals_the_image_dir_build(local_ray, tmp_path, capfd):
    pattern = _demo_tars(tmp_path)
    by_dir = _manifest(tmp_path / "dir.yaml", {"kind": "image_dir", "path": str(DEMO / "images"),
                                               "captions": str(DEMO / "captions.jsonl")}, tmp_path / "dir")
    by_tar = _manifest(tmp_path / "tar.yaml", {"kind": "webdataset", "path": pattern}, tmp_path / "tar")
    assert main(["annotate", by_dir]) == 0
    assert main(["annotate", by_tar]) == 0

    plan = load_plan(str(tmp_path / "tar"))
    shards = [read_shard_inputs(plan, i) for i in range(plan.num_shards)]
    assert [len(s) for s in shards] == [4, 3, 6]  # the .tar cut every 4; the .tar.gz whole in one shard
    assert all(parse_tar_location(i.location).offset is not None for s in shards[:2] for i in s)
    assert all(parse_tar_location(i.location).offset is None for i in shards[2])

    dir_samples, dir_failures = _by_stem(tmp_path / "dir")
    tar_samples, tar_failures = _by_stem(tmp_path / "tar")
    assert len(dir_samples) == 12 and set(dir_failures) == {"broken"}
    assert tar_samples == dir_samples and tar_failures == dir_failures
    assert any(record["labels"] for _, record in tar_samples.values())

    capfd.readouterr()
    assert main(["annotate", by_tar]) == 0  # a rerun: every shard committed, the source not listed again
    assert "not listed again" in capfd.readouterr().err
