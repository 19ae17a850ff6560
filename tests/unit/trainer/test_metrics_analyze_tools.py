"""The pieces of `pad analyze` around the metrics: manifest schema, projector sources, table, PNGs."""

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import save_file

from pad_pipeline.core.errors import ConfigError, PadError
from trainer.analysis import render
from trainer.analysis.measure import format_table
from trainer.analysis.config import ProjectorSpec, load_analyze_config, pretrain_config
from trainer.analysis.projectors import infer_kind, resolve_projector
from trainer.export import export_projector, llava_state_dict, projector_metadata
from trainer.analysis.metrics import ThresholdRule
from trainer.models.projectors import build_projector

BASE = {
    "output_dir": "OUT",
    "model": {"vision": {"checkpoint": "tiny-random"}, "llm": {"checkpoint": "tiny-random"},
              "projector": {"kind": "mlp2x_gelu"}},
    "data": {"path": "DATA"},
    "projectors": {"random": {}, "trained": {"source": "train:pa"}},
    "train": {"common": {"data": {"path": "TRAIN"}, "train": {"max_steps": 3, "global_batch_size": 4,
                                                              "micro_batch_size": 4}},
              "runs": {"pa": {"beta_max": 5, "set": {"train.lr": 0.01}}}},
}


def _manifest(tmp_path, data):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_manifest_builds_pretrain_configs_of_its_runs(tmp_path):
    cfg = load_analyze_config(_manifest(tmp_path, BASE), ["train.runs.pa.beta_max=2"])
    pc = pretrain_config(cfg, "pa")
    assert pc.train.beta_max == 2 and pc.train.lr == 0.01 and pc.train.max_steps == 3
    assert pc.train.output_dir.endswith("OUT/train/pa") and pc.data.path == "TRAIN"
    assert pc.model == cfg.model
    assert cfg.metrics.threshold.to_rule() == ThresholdRule("mean_std", 1.0)


@pytest.mark.parametrize("change,message", [
    ({"projectors": {"x": {"source": "train:nope"}}}, "names no run"),
    ({"projectors": {"a b": {}}}, "name folders"),
    ({"train": {"runs": {"pa": {"beta_max": 1, "set": {"train.lrr": 1}}}}}, "lrr"),
    ({"metrics": {"threshold": {"rule": "otsu"}}}, "metrics.threshold.rule"),
])
def test_bad_manifests_fail_with_one_line_naming_the_field(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_analyze_config(_manifest(tmp_path, {**BASE, **change}))
    assert "\n" not in str(err.value) and "m.yaml" in str(err.value)


@pytest.mark.parametrize("kind", ["linear", "mlp2x_gelu"])
def test_llava_mm_projector_bin_and_our_exports_load_identically(tmp_path, kind):
    cfg = load_analyze_config(_manifest(tmp_path, BASE))
    torch.manual_seed(0)
    ref = build_projector(kind, 32, 64)
    state = {k: v.detach().clone() for k, v in ref.state_dict().items()}
    bin_path = tmp_path / "mm_projector.bin"
    torch.save(llava_state_dict(state, torch.bfloat16), bin_path)
    assert infer_kind({k.split("mm_projector.")[1]: v for k, v in llava_state_dict(state).items()}) == kind
    paths = export_projector(state, str(tmp_path / "run" / "export"),
                             projector_metadata(kind, 32, 64, 256, 3, None, 64), dtype="float32")
    x = torch.randn(2, 64, 32)
    specs = {"bin": str(bin_path), "st": paths["safetensors"], "dir": str(tmp_path / "run")}
    outs = {}
    for name, source in specs.items():
        p = resolve_projector(name, ProjectorSpec(source=source), cfg, 32, 64, 64)
        outs[name] = p(x)
    with torch.no_grad():
        want = ref(x)
    torch.testing.assert_close(outs["st"], want)
    torch.testing.assert_close(outs["dir"], want)
    torch.testing.assert_close(outs["bin"], want, rtol=2e-2, atol=2e-2)  # stored in bfloat16, like LLaVA's


def test_projector_of_another_model_pair_is_refused(tmp_path):
    cfg = load_analyze_config(_manifest(tmp_path, BASE))
    torch.save(llava_state_dict(build_projector("mlp2x_gelu", 1024, 4096).state_dict()), tmp_path / "big.bin")
    with pytest.raises(PadError, match="big.bin"):
        resolve_projector("big", ProjectorSpec(source=str(tmp_path / "big.bin")), cfg, 32, 64, 64)
    save_file({"junk": torch.zeros(3)}, str(tmp_path / "junk.safetensors"))
    with pytest.raises(PadError, match="junk.safetensors"):
        resolve_projector("j", ProjectorSpec(source=str(tmp_path / "junk.safetensors")), cfg, 32, 64, 64)
    with pytest.raises(PadError, match="does not exist"):
        resolve_projector("m", ProjectorSpec(source=str(tmp_path / "missing.bin")), cfg, 32, 64, 64)


def test_table_has_one_row_per_projector():
    rows = [{"projector": n, "H_before": 3.0, "H_after": h, "delta_H": h - 3.0, "align": a, "cos_sim": c,
             "labels": 10} for n, h, a, c in [("random", 2.5, 0.1, 0.05), ("pa", 2.0, 0.6, 0.7)]]
    table = format_table(rows).splitlines()
    assert len(table) == 4 and table[3].startswith("| pa | 3.000 | 2.000 | -1.000 | 0.600 | 0.700 | 10 |")


def test_renders_have_the_grid_geometry():
    image = np.full((112, 112, 3), 128, dtype=np.uint8)
    words = ["red"] * 63 + ["a-very-long-word"]
    sims = list(np.linspace(-0.2, 1.0, 64))
    tm = analyze_render.token_map(image, words, sims, grid=8, cell_px=40)
    assert tm.size == (320, 320)
    assert analyze_render.font_size(1.0, 40) > analyze_render.font_size(0.2, 40) > analyze_render.MIN_FONT
    assert analyze_render.font_size(-1.0, 40) == analyze_render.MIN_FONT
    # a low-similarity cell is drawn lighter than a high-similarity one (darker text)
    px = np.asarray(tm.convert("L")).astype(int)
    assert px[280:320, 240:280].min() < px[0:40, 0:40].min()
    gt = np.zeros((2, 64), dtype=bool)
    gt[0, :3] = True
    pred = np.zeros((2, 64), dtype=bool)
    pred[0, 1:5] = True
    panel = analyze_render.mask_panel(image, ["red circle", "blue square"], gt, pred, [0.4, 0.0], grid=8,
                                      cell_px=16)
    assert panel.size == (2 * 128 + 12, 2 * (128 + 18) + 4)
    arr = np.asarray(panel).astype(int)
    # ground truth drawn green in its first cell, prediction red in its second cell
    g = arr[18 + 8, 8]
    r = arr[18 + 8, 128 + 12 + 16 + 8]
    assert g[1] > g[0] and r[0] > r[1]
