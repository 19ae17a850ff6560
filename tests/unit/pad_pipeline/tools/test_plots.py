"""`pad stats --plots`: every plot is a PNG that decodes, the same statistics give the same bytes."""

import io

from PIL import Image

from pad_pipeline.cli import main
from pad_pipeline.dataset.synthetic import random_field_build
from pad_pipeline.tools.plots import PLOT_NAMES, stats_plots
from pad_pipeline.tools.stats import compute_stats


def test_plots_are_deterministic_pngs(tmp_path, capsys):
    out = tmp_path / "b"
    random_field_build(str(out), num_samples=6, shard_size=3, min_side=16, max_side=20)
    stats = compute_stats(str(out))
    plots = stats_plots(stats)
    assert tuple(plots) == PLOT_NAMES
    for data in plots.values():
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG" and image.size[0] >= 600
    assert main(["stats", str(out), "--plots", str(tmp_path / "plots")]) == 0
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(f"{n}.png" for n in PLOT_NAMES)
    assert all((tmp_path / "plots" / f"{n}.png").read_bytes() == data for n, data in plots.items())  # same bytes
