"""`pad show`: drawn at the image's size, masks tinted, and with --grid exactly the tokens the trainer's
half-area rule selects (computed here with the trainer's own functions, not through pad show)."""

import io
import math

import numpy as np
import pytest
from PIL import Image
from transformers import CLIPImageProcessor

from pad_pipeline.cli import main
from pad_pipeline.dataset.rle import decode_mask
from pad_pipeline.dataset.synthetic import random_field_build, random_field_sample
from pad_pipeline.tools.show import TINT, GridLayout, label_colour, mark_colour, render_sample
from trainer.data.geometry import ImageGeometry, ProcessorSpec
from trainer.data.patches.grid import default_token_grid
from trainer.data.patches.masks import rle_token_masks

SPEC = ProcessorSpec.from_processor(CLIPImageProcessor(size={"shortest_edge": 336},
                                                       crop_size={"height": 336, "width": 336}))


def _pixels(sample):
    return np.asarray(Image.open(io.BytesIO(sample.image)).convert("RGB")).astype(np.float32)


def test_masks_are_tinted_at_the_images_size():
    sample = random_field_sample(3, seed=1, min_side=200, max_side=260)
    w, h = sample.record.size
    drawn = np.asarray(render_sample(sample)).astype(np.float32)
    assert drawn.shape == (h, w, 3)
    masks = np.stack([decode_mask(lb.rle_mask, h, w).astype(bool) for lb in sample.record.labels])
    original = _pixels(sample)
    only_first = masks[0] & ~masks[1:].any(0)
    expected = ((1 - TINT) * original + TINT * np.array(label_colour(0), np.float32)).round()
    assert np.mean(np.all(drawn[only_first] == expected[only_first], axis=1)) > 0.9   # boxes/text cover the rest
    outside = ~masks.any(0)
    assert np.mean(np.all(drawn[outside] == original[outside], axis=1)) > 0.9


def test_grid_layout_follows_the_processor_geometry():
    square = GridLayout.of(ImageGeometry.plan(336, 336, SPEC), 24)
    assert square.rows.tolist() == np.repeat(np.arange(24), 14).tolist() == square.cols.tolist()
    wide = GridLayout.of(ImageGeometry.plan(672, 336, SPEC), 24)   # centre crop keeps x in [168, 504)
    assert (wide.cols[:168] == -1).all() and (wide.cols[504:] == -1).all()
    assert wide.cols[168:504].tolist() == np.repeat(np.arange(24), 14).tolist()
    pad = ProcessorSpec(336, 336, SPEC.mean, SPEC.std, 3, "pad")
    letterbox = GridLayout.of(ImageGeometry.plan(336, 168, pad), 24)  # 84 px of padding above the image
    assert letterbox.rows.tolist() == [(y + 84) // 14 for y in range(168)]


def _marked(png: np.ndarray, layout: GridLayout, label: int, slots: int) -> list[int]:
    out = []
    for token in range(layout.grid ** 2):
        mark = layout.mark(token, label, slots)
        if mark and tuple(png[mark[0], mark[1]]) == mark_colour(label):
            out.append(token)
    return out


def test_grid_marks_exactly_the_tokens_the_trainer_selects():
    sample = random_field_sample(4, seed=0, min_side=300, max_side=420)  # rectangle, ellipse, 1-pixel speck
    r = sample.record
    png = np.asarray(render_sample(sample, default_token_grid()))
    assert png.shape[:2] == (r.height, r.width)
    geometry = ImageGeometry.plan(r.width, r.height, SPEC)
    expected = rle_token_masks([lb.rle_mask for lb in r.labels], geometry, 24)
    layout = GridLayout.of(geometry, 24)
    slots = math.ceil(math.sqrt(len(r.labels)))
    for i in range(len(r.labels)):
        assert _marked(png, layout, i, slots) == np.flatnonzero(expected[i].numpy()).tolist(), r.labels[i].tag
    assert expected[0].sum() > 20 and expected[2].sum() == 0  # the speck selects nothing


def test_pad_show_cli(tmp_path, capsys):
    out = tmp_path / "b"
    random_field_build(str(out), num_samples=3, shard_size=2, min_side=80, max_side=90)
    key = "random_fields_00000002_jpg"
    assert main(["show", str(out), key, "--png", str(tmp_path / "s.png"), "--grid"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "24x24 tokens" in lines[0] and lines[1].startswith("label 0 ") and "of 576 tokens" in lines[1]
    assert Image.open(tmp_path / "s.png").size == tuple(random_field_sample(2, 0, 80, 90).record.size)
    assert main(["show", str(out), "nope", "--png", str(tmp_path / "x.png")]) == 2
    assert "no committed sample with key 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("scale", [1, 3])
def test_gallery_scale_enlarges(scale):
    sample = random_field_sample(1, seed=0, min_side=40, max_side=50)
    assert render_sample(sample, scale=scale).size == tuple(scale * v for v in sample.record.size)
