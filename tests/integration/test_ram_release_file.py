"""The released RAM++ file (issue 12): a full-size RAM++ state dict in the official key layout, with
`logit_scale` added and `reweight_scale` removed (as in `ram_plus_swin_large_14m.pth`), and the reverse,
loaded through the registry builder the manifest uses (`build_ram_plus_tagger`).

The state dict has every key and full shape of the official file (Swin-L at 384 px, 4585 tags x 51
descriptions, the Swin buffers the official files carry), built from the model on the meta device.
Each tensor is one distinct constant expanded to its shape, so the file is a few kilobytes (the
gigabytes are bench/ram_load.py's business), and a tensor that lands in the wrong parameter shows.
"""

import math

import pytest
import torch

from pad_pipeline.annotate.config import ModelsConfig, TaggerConfig
from pad_pipeline.annotate.models.ram.checkpoint import official_to_ours, ours_to_official
from pad_pipeline.annotate.models.ram.model import RamModel, ram_plus_swin_large_config
from pad_pipeline.annotate.models.ram.tagger import build_ram_plus_tagger

NUM_TAGS = 4585
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """(folder with the tag list, official state dict of constants, the constant of each official key)."""
    folder = tmp_path_factory.mktemp("ram_plus")
    (folder / "ram_tag_list.txt").write_text("".join(f"tag{i:04d}\n" for i in range(NUM_TAGS)))
    with torch.device("meta"):
        model = RamModel(ram_plus_swin_large_config(NUM_TAGS))
    tensors = {**dict(model.state_dict()), **dict(model.named_buffers())}
    values, state = {}, {}
    for i, (name, meta) in enumerate(sorted(tensors.items())):
        key = ours_to_official(name)
        values[key] = 1.0 + i / 1000
        fill = values[key] if meta.dtype.is_floating_point else 1  # integer buffers: skipped anyway
        state[key] = torch.tensor(fill, dtype=meta.dtype).expand(meta.shape)  # one stored value
    return folder, state, values


def _build(folder, state, name):
    path = folder / name
    torch.save({"model": state, "optimizer": {"state": {}, "param_groups": []}}, path)
    cfg = TaggerConfig(kind="ram_plus", checkpoint=str(path), tag_list=str(folder / "ram_tag_list.txt"),
                       image_size=384)
    return build_ram_plus_tagger(cfg, ModelsConfig(device="cpu", dtype="float32"), CPU)


def _assert_loaded(tagger, values):
    for name, tensor in tagger.model.state_dict().items():
        if name != "reweight_scale":
            assert torch.all(tensor == values[ours_to_official(name)]), name


def test_the_released_layout_loads_with_the_official_initial_reweight_scale(release):
    folder, state, values = release
    released = {k: v for k, v in state.items() if k != "reweight_scale"}
    released["logit_scale"] = torch.tensor(math.log(1 / 0.07))
    tagger = _build(folder, released, "ram_plus_swin_large_14m.pth")
    assert tagger.model.reweight_scale.item() == pytest.approx(math.log(1 / 0.07), abs=1e-6)
    _assert_loaded(tagger, values)
    buffers = sum(official_to_ours(k) is None for k in state)  # Swin buffers, skipped by name
    provenance = tagger.provenance()
    assert provenance["defaulted_keys"] == ["reweight_scale"]
    assert provenance["skipped_keys"] == buffers + 1  # + logit_scale
    assert provenance["loaded_keys"] == len(state) - buffers - 1


def test_a_file_with_reweight_scale_and_no_logit_scale_loads_its_own_value(release):
    folder, state, values = release
    tagger = _build(folder, state, "ram_plus_with_reweight_scale.pth")
    assert tagger.model.reweight_scale.item() == pytest.approx(values["reweight_scale"])
    _assert_loaded(tagger, values)
    assert tagger.provenance()["defaulted_keys"] == []
