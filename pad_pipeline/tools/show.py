"""`pad show OUT KEY --png FILE [--grid]`: one sample drawn with its masks (tinted), boxes and tags.

`render_sample` draws at the stored image's size (`scale` enlarges, for the gallery). With a
`TokenGrid` it also shows what the patch loss sees: pixels the processor crops away are dimmed, the
token grid is drawn where it falls on the image (`GridLayout`, from the trainer's own
`ImageGeometry.cell_weights`), and every token a label selects (the trainer's `rle_token_masks`) gets
a dot of the label's hue, fully saturated (`mark_colour`: no box, text or tint has it; dark-rimmed
when 3 px or more). Label i's dot sits in slot i of a k x k pattern inside each token cell
(k = ceil(sqrt(labels))), so overlapping labels stay readable; dots are drawn last, on top.
"""

from __future__ import annotations

import colorsys
import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.layout import BuildLayout
from pad_pipeline.dataset.reader import committed_records, iter_tar_samples, read_index
from pad_pipeline.dataset.records import Sample
from pad_pipeline.dataset.rle import decode_mask

if TYPE_CHECKING:
    from pad_pipeline.dataset.records import SampleRecord


class TokenView(Protocol):
    """What `pad show --grid` needs of the trainer's token grid (`trainer.data.patches.grid.TokenGrid`,
    handed in by `cli.py`: pad_pipeline imports trainer nowhere else)."""

    @property
    def grid(self) -> int: ...
    def geometry(self, record: SampleRecord) -> Any: ...
    def describe(self) -> str: ...
    def label_tokens(self, record: SampleRecord) -> Any: ...


DIM_OUTSIDE_VIEW = 0.35   # brightness of pixels the processor crops away
TINT = 0.45               # opacity of a label's colour over its mask


def find_sample(out: str, key: str) -> Sample:
    """The committed sample `key` (shards are located through their parquet index)."""
    layout = BuildLayout(out)
    for index, record in sorted(committed_records(out).items()):
        if record.index_bytes is not None or storage.exists(layout.index(index)):
            keys = read_index(out, index, record, columns=["key"]).column("key").to_pylist()
            if key not in keys:
                continue
        for sample in iter_tar_samples(storage.read_bytes(layout.tar(index)), record.tar):
            if sample.key == key:
                return sample
    raise PadError(f"{out}: no committed sample with key {key!r} (keys look like 00000_00000030_jpg)")


def label_colour(i: int, saturation: float = 0.85) -> tuple[int, int, int]:
    """The colour of label i (its tint, box and text): hues a golden angle apart, so neighbours differ."""
    r, g, b = colorsys.hsv_to_rgb((i * 0.618) % 1.0, saturation, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def mark_colour(i: int) -> tuple[int, int, int]:
    """The colour of label i's token dots: its hue fully saturated, a colour nothing else is drawn in."""
    return label_colour(i, 1.0)


def _owners(weights: np.ndarray) -> np.ndarray:
    """Token row (or column) of each pixel row (or column): the cell holding most of it; -1 when less
    than half of the pixel is inside the processor's view."""
    owner = weights.argmax(0)
    owner[weights.sum(0) < 0.5] = -1
    return owner


@dataclass(frozen=True)
class GridLayout:
    """Where the token grid falls on the stored image, per pixel row and column."""

    rows: np.ndarray   # [height] token row of each pixel row, -1 outside the view
    cols: np.ndarray   # [width]
    grid: int

    @classmethod
    def of(cls, geometry, grid: int) -> "GridLayout":
        wy, wx = geometry.cell_weights(grid)
        return cls(_owners(wy.numpy()), _owners(wx.numpy()), grid)

    @staticmethod
    def span(owners: np.ndarray, i: int) -> tuple[int, int]:
        """[start, stop) of the pixels owned by token row/column i (start == stop when none)."""
        idx = np.flatnonzero(owners == i)
        return (int(idx[0]), int(idx[-1]) + 1) if idx.size else (0, 0)

    def mark(self, token: int, slot: int, slots: int) -> tuple[int, int, int] | None:
        """(y, x, size) of the dot of `slot` (of slots x slots) in token cell `token`; None when the cell
        has no pixel on the image."""
        (y0, y1), (x0, x1) = self.span(self.rows, token // self.grid), self.span(self.cols, token % self.grid)
        if y1 == y0 or x1 == x0:
            return None
        si, sj = divmod(slot, slots)
        size = max(1, min(y1 - y0, x1 - x0) // (2 * slots))
        return y0 + int((si + 0.5) * (y1 - y0) / slots), x0 + int((sj + 0.5) * (x1 - x0) / slots), size


def _grid_pixels(canvas: np.ndarray, layout: GridLayout) -> None:
    """Dim what the processor crops away; lighten the first pixel row/column of every token cell."""
    outside = (layout.rows < 0)[:, None] | (layout.cols < 0)[None, :]
    canvas[outside] *= DIM_OUTSIDE_VIEW
    inside = ~outside
    row_edge = np.r_[False, np.diff(layout.rows) != 0] & (layout.rows >= 0)
    col_edge = np.r_[False, np.diff(layout.cols) != 0] & (layout.cols >= 0)
    lines = (row_edge[:, None] | col_edge[None, :]) & inside
    canvas[lines] = 0.6 * canvas[lines] + 0.4 * 255.0


def render_sample(sample: Sample, token_grid: TokenView | None = None, scale: int = 1) -> Image.Image:
    """The sample's image with tinted masks, boxes and tags (and, with `token_grid`, the token grid and
    the tokens each label selects), at `scale` times the stored image's size."""
    image = Image.open(io.BytesIO(sample.image)).convert("RGB")
    w, h = image.size
    canvas = np.asarray(image, dtype=np.float32).copy()
    labels = sample.record.labels
    for i, label in enumerate(labels):
        m = decode_mask(label.rle_mask, h, w).astype(bool)
        canvas[m] = (1 - TINT) * canvas[m] + TINT * np.array(label_colour(i), np.float32)
    layout = None
    if token_grid is not None:
        layout = GridLayout.of(token_grid.geometry(sample.record), token_grid.grid)
        _grid_pixels(canvas, layout)
    out = Image.fromarray(canvas.round().clip(0, 255).astype(np.uint8))
    if scale > 1:
        out = out.resize((w * scale, h * scale), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=max(9, min(out.size) // 28))
    for i, label in enumerate(labels):
        x0, y0, x1, y1 = (c * scale for c in label.bbox)
        draw.rectangle([x0, y0, x1, y1], outline=label_colour(i), width=max(1, scale))
        draw.text((x0 + 2, y0 + 1), f"{label.tag} {label.score:.2f}", fill=label_colour(i), font=font,
                  stroke_width=1, stroke_fill=(0, 0, 0))
    draw.text((3, out.size[1] - int(getattr(font, "size", 10)) - 4), f"tags: {', '.join(sample.record.tags)}"[:120],
              fill=(255, 255, 255), font=font, stroke_width=1, stroke_fill=(0, 0, 0))
    if layout is not None and token_grid is not None:
        _draw_token_marks(draw, sample, token_grid, layout, scale)
    return out


def _draw_token_marks(draw: ImageDraw.ImageDraw, sample: Sample, token_grid: TokenView, layout: GridLayout,
                      scale: int) -> None:
    tokens = token_grid.label_tokens(sample.record)
    slots = max(1, math.ceil(math.sqrt(len(tokens))))
    for i, selected in enumerate(tokens):
        for token in np.flatnonzero(selected.numpy()):
            mark = layout.mark(int(token), i, slots)
            if mark is None:
                continue
            y, x, size = mark
            top, left = (y - size // 2) * scale, (x - size // 2) * scale
            # a dark rim (dots of 3 px and more) keeps a dot visible on its own label's tint
            draw.rectangle([left, top, left + size * scale - 1, top + size * scale - 1], fill=mark_colour(i),
                           outline=(0, 0, 0) if size >= 3 else None)


def show(out: str, key: str, png: str, token_grid: TokenView | None = None) -> list[str]:
    """Draw sample `key` of the build at `out` into `png`; with `token_grid`, one line per label saying
    how many tokens it selects (what `pad show --grid` prints)."""
    sample = find_sample(out, key)
    buf = io.BytesIO()
    render_sample(sample, token_grid).save(buf, format="PNG")
    storage.write_bytes(png, buf.getvalue())
    if token_grid is None:
        return []
    counts = token_grid.label_tokens(sample.record).sum(1).tolist()
    lines = [token_grid.describe()]
    for i, (label, n) in enumerate(zip(sample.record.labels, counts, strict=True)):
        note = "" if n else "  (selects no token: the patch loss skips it)"
        lines.append(f"label {i} {label.tag!r}: {n} of {token_grid.grid ** 2} tokens{note}")
    return lines
