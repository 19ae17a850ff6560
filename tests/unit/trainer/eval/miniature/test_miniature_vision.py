"""The miniature's vision tower: 2D sine-cosine positions against a numpy float64 reference, written and
loaded like any CLIP folder, with patch tokens that tell a shape's place."""

import math

import numpy as np
import pytest
import torch

from pad_pipeline.dataset.shapes import SyntheticShapesConfig, make_scene
from trainer.config.sections import VisionConfig
from trainer.eval.miniature.vision import is_done, sincos_positions, write_vision_tower
from trainer.eval.miniature.vision_config import VisionTowerConfig
from trainer.models import tiny
from trainer.models.loading import load_vision


def _reference(grid: int, dim: int, scale: float) -> np.ndarray:
    quarter = dim // 4
    rows = [np.zeros(dim)]
    for r in range(grid):
        for c in range(grid):
            row = []
            for coord in (c, r):
                angles = [coord * 100.0 ** (-k / quarter) for k in range(quarter)]
                row += [math.sin(a) for a in angles] + [math.cos(a) for a in angles]
            rows.append(np.array(row) * scale)
    return np.stack(rows)


@pytest.mark.parametrize("grid, dim, scale", [(8, 32, 3.0), (3, 8, 1.0), (1, 4, 0.5)])
def test_sincos_positions_match_a_float64_reference(grid, dim, scale):
    got = sincos_positions(grid, dim, scale)
    assert got.shape == (1 + grid * grid, dim) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), _reference(grid, dim, scale), atol=1e-6)


def test_sincos_positions_need_a_width_divisible_by_4():
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_positions(8, 30, 1.0)


def test_every_patch_gets_its_own_position():
    pe = sincos_positions(8, 32, 1.0)[1:]
    distances = torch.cdist(pe, pe) + torch.eye(len(pe)) * 1e9
    assert distances.min() > 0.1


@pytest.mark.parametrize("positions", ["sincos", "random"])
def test_the_tower_is_written_and_loads_as_a_clip_folder(tmp_path, positions):
    cfg = VisionTowerConfig(positions=positions)
    folder = str(tmp_path / "vision")
    assert not is_done(folder, cfg, 5)
    write_vision_tower(cfg, folder, 5)
    assert is_done(folder, cfg, 5) and not is_done(folder, cfg, 6)
    assert not is_done(folder, VisionTowerConfig(positions=positions, scale=1.0), 5)
    model, processor = load_vision(VisionConfig(checkpoint=folder))
    weight = model.embeddings.position_embedding.weight
    preset = tiny.tiny_vision_model(5).embeddings.position_embedding.weight
    expected = sincos_positions(8, 32, 3.0) if positions == "sincos" else preset
    torch.testing.assert_close(weight, expected)
    assert processor.crop_size == {"height": tiny.TINY_IMAGE_SIZE, "width": tiny.TINY_IMAGE_SIZE}
    fresh = tiny.tiny_vision_model(5).state_dict()  # the rest is the tiny preset's seed-5 tower
    assert all(torch.equal(v, fresh[k]) for k, v in model.state_dict().items() if "position" not in k)


def _position_share(folder: str, images: torch.Tensor) -> float:
    """The share of the patch tokens' variance explained by where a patch is (its mean over the images)."""
    model = load_vision(VisionConfig(checkpoint=folder))[0]
    with torch.no_grad():
        tokens = model(pixel_values=images, output_hidden_states=True).hidden_states[-2][:, 1:]  # [n, 64, d]
    return (tokens.mean(0).var(0).sum() / tokens.flatten(0, 1).var(0).sum()).item()


def test_patch_tokens_of_scenes_say_where_they_are_only_with_sincos(tmp_path):
    cfg = SyntheticShapesConfig(out=str(tmp_path / "unused"))
    scenes = [make_scene(np.random.default_rng([0, i]), cfg).image for i in range(32)]
    images = torch.tensor(np.stack(scenes)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    share = {}
    for positions in ("sincos", "random"):
        write_vision_tower(VisionTowerConfig(positions=positions), str(tmp_path / positions), 0)
        share[positions] = _position_share(str(tmp_path / positions), images)
    assert share["sincos"] > 0.5 > 0.1 > share["random"], share
