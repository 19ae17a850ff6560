"""Writers of tiny files in the real benchmark formats (eval reader and scoring tests)."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

from PIL import Image


def png_bytes(width: int, height: int, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


def write_image(path: Path, width: int, height: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(width, height))
    return path


def py2_pickle(value: Any) -> bytes:
    """Protocol-2 opcodes as Python 2's cPickle writes plain data: `str` as SHORT_BINSTRING/BINSTRING bytes.

    Python 3 cannot produce these (it pickles bytes through a `_codecs.encode` global), so they are emitted here.
    """

    def emit(v: Any) -> bytes:
        if isinstance(v, bool) or v is None:
            return {True: b"\x88", False: b"\x89", None: b"N"}[v]
        if isinstance(v, int):
            return b"J" + struct.pack("<i", v)
        if isinstance(v, float):
            return b"G" + struct.pack(">d", v)
        if isinstance(v, (str, bytes)):
            data = v.encode("utf-8") if isinstance(v, str) else v
            return (b"U" + bytes([len(data)]) if len(data) < 256 else b"T" + struct.pack("<i", len(data))) + data
        if isinstance(v, list):
            return b"](" + b"".join(emit(x) for x in v) + b"e"
        if isinstance(v, dict):
            return b"}(" + b"".join(emit(k) + emit(x) for k, x in v.items()) + b"u"
        raise TypeError(type(v))

    return b"\x80\x02" + emit(value) + b"."
