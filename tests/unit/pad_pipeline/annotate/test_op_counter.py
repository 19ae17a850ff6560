"""The CPU proxy counts aten ops and host syncs; each stage syncs a fixed number of times per batch,
the same for 2 and 8 images and for 1 and 10 boxes per image (issue 20)."""

import numpy as np
import pytest
import torch

from pad_pipeline.annotate.chain import Annotator
from pad_pipeline.annotate.config import AnnotateConfig
from pad_pipeline.annotate.models.base import Detections
from pad_pipeline.annotate.op_counter import OpCounter, count_stages

# The number each stage's docstring states.
STAGE_SYNCS = {"tag": 1, "detect": 2, "nms": 2, "segment": 0, "encode": 2}


def test_counter_sees_ops_and_each_kind_of_host_read():
    x = torch.arange(6.0)
    with OpCounter() as c:
        y = (x * 2).sum()
    assert c.ops >= 2 and c.syncs == 0
    with OpCounter() as c:
        y.item()
        (x > 2).nonzero()
        x.tolist()
        x.cpu()
        x[x > 3]
    assert c.sync_ops == {"_local_scalar_dense": 1, "nonzero": 1, "tolist": 1, "cpu": 1, "index": 1}


@pytest.fixture(scope="module")
def chain():
    cfg = AnnotateConfig.model_validate(AnnotateConfig.apply_presets(
        {"source": {"kind": "image_dir", "path": "."}, "models": {"preset": "tiny-random", "device": "cpu"}}))
    return Annotator(cfg.models).setup()


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (int(rng.integers(40, 120)), int(rng.integers(40, 120)), 3), dtype=np.uint8)
            for _ in range(n)]


def test_every_stage_syncs_as_often_for_2_as_for_8_images(chain):
    two, eight = count_stages(chain.stages, _images(2)), count_stages(chain.stages, _images(8, seed=1))
    for name, expected in STAGE_SYNCS.items():
        assert two[name].syncs == eight[name].syncs == expected, (name, two[name].sync_ops, eight[name].sync_ops)
    assert eight["detect"].ops > 0 and eight["segment"].ops > two["segment"].ops  # the work itself scales


def _boxes(n, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * torch.tensor([w / 2, h / 2])
    return torch.cat([xy, xy + torch.tensor([w / 3, h / 3])], 1)


def test_nms_segment_and_encode_sync_as_often_for_1_as_for_10_boxes(chain):
    images = _images(3, seed=2)
    stages = [s for s in chain.stages if s.name in ("nms", "segment", "encode")]
    counts = {}
    for n in (1, 10):
        dets = [Detections(_boxes(n, *im.shape[:2], i), torch.linspace(0.9, 0.1, n), [f"t{k}" for k in range(n)])
                for i, im in enumerate(images)]
        batch = {"image": images, "detections": dets}
        counts[n] = {}
        with torch.inference_mode():
            for stage in stages:
                with OpCounter() as c:
                    batch = stage(batch)
                counts[n][stage.name] = c.syncs
        assert sum(len(lab) for lab in batch["labels"]) + sum(batch["empty_masks"]) >= 3
    assert counts[1] == counts[10] == {k: STAGE_SYNCS[k] for k in ("nms", "segment", "encode")}
