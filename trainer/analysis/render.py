"""PNG figures of `pad analyze` (Pillow only): matching-pursuit token maps and predicted vs true masks.

`token_map(image, words, sims, grid)` draws, over a faded copy of the model's input image, the first
matching-pursuit word of every token in its grid cell, with the font size growing with the cosine
between the token and that word (paper Figure 1/4). `mask_panel(image, tags, gt, pred, ious, grid)`
draws one row per label: the ground-truth token mask and the predicted one (cosine above the
threshold), side by side with the IoU (Figure 5). Images are uint8 [S, S, 3], the processor's crop,
so token cell (r, c) covers pixels [r S/g, (r+1) S/g) x [c S/g, (c+1) S/g).
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MIN_FONT = 7


@functools.lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _base(image: np.ndarray, grid: int, cell_px: int, fade: float) -> Image.Image:
    side = grid * cell_px
    img = Image.fromarray(image).convert("RGB").resize((side, side), Image.Resampling.BICUBIC)
    return Image.blend(img, Image.new("RGB", img.size, "white"), fade) if fade > 0 else img


def _grid_lines(draw: ImageDraw.ImageDraw, grid: int, cell_px: int, color=(255, 255, 255)) -> None:
    side = grid * cell_px
    for i in range(1, grid):
        draw.line([(i * cell_px, 0), (i * cell_px, side)], fill=color, width=1)
        draw.line([(0, i * cell_px), (side, i * cell_px)], fill=color, width=1)


def font_size(similarity: float, cell_px: int) -> int:
    """Cosine in [0, 1] -> font size from MIN_FONT to about half a cell (negative cosines get MIN_FONT)."""
    top = max(MIN_FONT + 1, cell_px // 2)
    return int(round(MIN_FONT + (top - MIN_FONT) * min(max(similarity, 0.0), 1.0)))


def token_map(image: np.ndarray, words: list[str], sims: list[float], grid: int,
              cell_px: int = 56) -> Image.Image:
    """The first matching-pursuit word per token, written in its cell, sized by its cosine."""
    canvas = _base(image, grid, cell_px, fade=0.55)
    draw = ImageDraw.Draw(canvas)
    _grid_lines(draw, grid, cell_px, (200, 200, 200))
    for i, (word, sim) in enumerate(zip(words, sims, strict=True)):
        r, c = divmod(i, grid)
        size = font_size(sim, cell_px)
        while size > MIN_FONT and draw.textlength(word, font=_font(size)) > cell_px - 4:
            size -= 1  # long words shrink to fit their cell
        shade = int(160 * (1 - min(max(sim, 0.0), 1.0)))
        draw.text(((c + 0.5) * cell_px, (r + 0.5) * cell_px), word, fill=(shade, shade, shade),
                  font=_font(size), anchor="mm")
    return canvas


def _overlay(image: np.ndarray, mask: np.ndarray, grid: int, cell_px: int,
             color: tuple[int, int, int]) -> Image.Image:
    canvas = _base(image, grid, cell_px, fade=0.2).convert("RGBA")
    layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for i in np.flatnonzero(mask):
        r, c = divmod(int(i), grid)
        draw.rectangle([c * cell_px, r * cell_px, (c + 1) * cell_px - 1, (r + 1) * cell_px - 1],
                       fill=(*color, 120), outline=(*color, 255), width=2)
    return Image.alpha_composite(canvas, layer).convert("RGB")


def mask_panel(image: np.ndarray, tags: list[str], gt: np.ndarray, pred: np.ndarray, ious: list[float],
               grid: int, cell_px: int = 32) -> Image.Image:
    """Rows of [ground truth | predicted] token masks, one per label, captioned with tag and IoU."""
    side, header = grid * cell_px, 18
    rows = max(1, len(tags))
    panel = Image.new("RGB", (2 * side + 12, rows * (side + header) + 4), "white")
    draw = ImageDraw.Draw(panel)
    for j, tag in enumerate(tags):
        y = j * (side + header)
        caption = f"{tag}: ground truth | predicted (IoU {ious[j]:.2f})"
        draw.text((2, y + 2), caption, fill="black", font=_font(12))
        panel.paste(_overlay(image, gt[j], grid, cell_px, (0, 170, 60)), (0, y + header))
        panel.paste(_overlay(image, pred[j], grid, cell_px, (220, 40, 40)), (side + 12, y + header))
    if not tags:
        draw.text((2, 2), "no label selects a token", fill="black", font=_font(12))
    return panel
