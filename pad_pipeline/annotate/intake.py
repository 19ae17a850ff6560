"""Image intake: bytes -> an 8-bit RGB array and the stored JPEG, or a named failure.

Every input ends as a `DecodedImage` or an `IntakeFailure` naming why (`empty_file`, `not_an_image`,
`decode_error`, `truncated`, `too_large`, `too_small`, `unsupported_mode`); nothing raises.
Deliberate conversions: EXIF orientation is applied; CMYK, palette, grayscale and 16-bit images
become 8-bit RGB (16-bit by dropping the low byte); transparency is composited on white.
The stored image is the annotated one: an RGB JPEG without orientation tag is kept byte-for-byte,
anything else is re-encoded and the re-encoded pixels are what the models see.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pad_pipeline.annotate.config import IntakeConfig

_EXIF_ORIENTATION = 0x0112


@dataclass
class DecodedImage:
    pixels: np.ndarray  # (H, W, 3) uint8, what the models annotate
    jpeg: bytes  # the stored image; decodes to `pixels`


@dataclass
class IntakeFailure:
    reason: str
    detail: str = ""


def _to_rgb(im: Image.Image) -> Image.Image | None:
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.int64)
        # 16-bit sources: keep the high byte; 32-bit "I" holding 16-bit data is the common PNG case.
        shift = 8 if arr.max(initial=0) > 255 or mode.startswith("I;16") else 0
        arr8 = np.clip(arr >> shift, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode in ("L", "P", "1", "CMYK", "YCbCr", "LAB", "HSV"):
        return im.convert("RGB")
    return None


def _is_plain_jpeg(im: Image.Image) -> bool:
    orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
    return im.format == "JPEG" and im.mode == "RGB" and orientation in (0, 1)


def decode_image(data: bytes, cfg: IntakeConfig, jpeg_quality: int = 95) -> DecodedImage | IntakeFailure:
    """Decode `data` into what is annotated and stored, or say why not."""
    if len(data) == 0:
        return IntakeFailure("empty_file")
    if len(data) > cfg.max_bytes:
        return IntakeFailure("too_large", f"{len(data)} bytes > intake.max_bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im: Image.Image = Image.open(io.BytesIO(data))
            w, h = im.size
            if w * h > cfg.max_pixels:
                return IntakeFailure("too_large", f"{w}x{h} pixels > intake.max_pixels")
            im.load()
    except UnidentifiedImageError:
        return IntakeFailure("not_an_image")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        return IntakeFailure("too_large", str(e).splitlines()[0][:200])
    except OSError as e:
        reason = "truncated" if "truncated" in str(e).lower() else "decode_error"
        return IntakeFailure(reason, str(e)[:200])
    except Exception as e:  # a corrupt file can raise almost anything inside a codec
        return IntakeFailure("decode_error", f"{type(e).__name__}: {e}"[:200])
    plain = _is_plain_jpeg(im)
    try:
        im = ImageOps.exif_transpose(im)
        rgb = _to_rgb(im)
    except Exception as e:
        return IntakeFailure("decode_error", f"{type(e).__name__}: {e}"[:200])
    if rgb is None:
        return IntakeFailure("unsupported_mode", im.mode)
    if min(rgb.size) < cfg.min_side:
        return IntakeFailure("too_small", f"{rgb.size[0]}x{rgb.size[1]}")
    if cfg.max_side is not None and max(rgb.size) > cfg.max_side:
        scale = cfg.max_side / max(rgb.size)
        rgb = rgb.resize((max(1, round(rgb.size[0] * scale)), max(1, round(rgb.size[1] * scale))),
                         Image.Resampling.BICUBIC)
        plain = False
    if plain:
        return DecodedImage(np.asarray(rgb, dtype=np.uint8), data)
    buf = io.BytesIO()
    rgb.save(buf, format="JPEG", quality=jpeg_quality)
    jpeg = buf.getvalue()
    pixels = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), dtype=np.uint8)
    return DecodedImage(pixels, jpeg)
