"""An annotation does not depend on its batch neighbours (issues 12, 20): byte-identical shards whatever the
runner's batch size (1, 3, 8) or the batched detector's (4, 2, 1 (image, chunk) pairs per pass), on images
of many sizes and aspect ratios (several canvas buckets; pairs of one bucket share passes with blanks).

Real `pad annotate` (`run_annotate` on a local Ray instance) with the tiny-random models. Shards of 5
images: with batches of 3 every shard mixes sizes inside a batch (3 + 2), with 8 a batch is the whole
shard, with 1 every image is alone.
"""

import hashlib

import numpy as np
import pytest
from helpers import write_manifest
from PIL import Image

from pad_pipeline.annotate.config import load_annotate_config
from pad_pipeline.dataset.reader import committed_shard_urls, iter_committed_samples
from pad_pipeline.ray.driver import run_annotate

# (height, width): landscape, portrait, square, panoramas, odd sizes; two pairs of equal size.
SIZES = [(60, 80), (80, 60), (64, 64), (45, 160), (150, 50), (60, 80), (97, 131), (33, 200),
         (120, 90), (71, 71), (200, 33), (80, 60)]
# runner.batch_size 1, 3, 8, each with another detector batch size (4 is the default); three builds keep it short.
BUILDS = {"runner1": {"batch_size": 1},
          "runner3_detector2": {"batch_size": 3, "detector_batch_size": 2},
          "runner8_detector1": {"batch_size": 8, "detector_batch_size": 1}}


def _image(h: int, w: int, i: int) -> Image.Image:
    rng = np.random.default_rng(i)
    y, x = np.mgrid[0:h, 0:w]
    arr = (rng.integers(40, 200, 3) + 50 * np.sin(x[..., None] / (4 + i) + y[..., None] / 7)).clip(0, 255)
    arr = arr.astype(np.uint8)
    arr[h // 5: h // 2, w // 4: 3 * w // 4] = rng.integers(0, 255, 3)  # an object to find
    return Image.fromarray(arr)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mixed")
    for i, (h, w) in enumerate(SIZES):
        _image(h, w, i).save(folder / f"img_{i:02d}.jpg", quality=92)
    return folder


@pytest.fixture(scope="module")
def builds(local_ray, corpus, tmp_path_factory):
    outs = {}
    for name, runner in BUILDS.items():
        tmp = tmp_path_factory.mktemp(name)
        runner = dict(runner)
        detector_batch = runner.pop("detector_batch_size", None)
        # one shard worker: a process less to start per build (the bytes do not depend on it)
        manifest = write_manifest(tmp / "m.yaml", corpus, tmp / "out", shard_size=5,
                                  shard_workers_per_annotator=1, **runner)
        overrides = [f"models.detector.batch_size={detector_batch}"] if detector_batch else []
        summary = run_annotate(load_annotate_config(str(manifest), overrides))
        assert summary.ok and summary.samples == len(SIZES), name
        outs[name] = tmp / "out"
    return outs


def _tar_digests(out) -> list[str]:
    return [hashlib.sha256(open(url, "rb").read()).hexdigest() for url in committed_shard_urls(str(out))]


def test_shards_are_byte_identical_whatever_the_batch_sizes(builds):
    digests = {name: _tar_digests(out) for name, out in builds.items()}
    reference = digests["runner1"]
    assert len(reference) == 3
    for name, found in digests.items():
        assert found == reference, f"{name} differs from runner.batch_size=1"


def test_the_builds_compared_hold_masks_on_every_size(builds):
    """The comparison is not vacuous: every image of every size has labels with masks."""
    samples = list(iter_committed_samples(str(builds["runner3_detector2"])))
    assert sorted(tuple(s.record.size[::-1]) for s in samples) == sorted(SIZES)
    assert all(s.record.labels for s in samples)
    assert sum(len(s.record.labels) for s in samples) >= 3 * len(SIZES)
