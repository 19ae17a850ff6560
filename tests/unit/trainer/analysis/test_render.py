"""The analysis PNGs: token maps and mask panels have the grid geometry."""

import numpy as np

from trainer.analysis import render


def test_renders_have_the_grid_geometry():
    image = np.full((112, 112, 3), 128, dtype=np.uint8)
    words = ["red"] * 63 + ["a-very-long-word"]
    sims = list(np.linspace(-0.2, 1.0, 64))
    tm = render.token_map(image, words, sims, grid=8, cell_px=40)
    assert tm.size == (320, 320)
    assert render.font_size(1.0, 40) > render.font_size(0.2, 40) > render.MIN_FONT
    assert render.font_size(-1.0, 40) == render.MIN_FONT
    # a low-similarity cell is drawn lighter than a high-similarity one (darker text)
    px = np.asarray(tm.convert("L")).astype(int)
    assert px[280:320, 240:280].min() < px[0:40, 0:40].min()
    gt = np.zeros((2, 64), dtype=bool)
    gt[0, :3] = True
    pred = np.zeros((2, 64), dtype=bool)
    pred[0, 1:5] = True
    panel = render.mask_panel(image, ["red circle", "blue square"], gt, pred, [0.4, 0.0], grid=8,
                                      cell_px=16)
    assert panel.size == (2 * 128 + 12, 2 * (128 + 18) + 4)
    arr = np.asarray(panel).astype(int)
    # ground truth drawn green in its first cell, prediction red in its second cell
    g = arr[18 + 8, 8]
    r = arr[18 + 8, 128 + 12 + 16 + 8]
    assert g[1] > g[0] and r[0] > r[1]
