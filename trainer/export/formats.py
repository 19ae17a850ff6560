"""The names of the export formats, their folders in a run and the export dtypes: the one list the `pad export`
command line, the manifests (`export.formats`, `export.dtype`) and the exporters read (no torch imported here).
"""

from __future__ import annotations

from typing import Literal, get_args

from trainer.run_layout import EXPORT_FOLDERS

FORMATS = ("hf", "llava", "pad")
SFT_END_FORMATS = tuple(f for f in FORMATS if f != "pad")  # what `export.formats` may ask; PAD's is always written
FOLDERS = EXPORT_FOLDERS
DtypeName = Literal["float32", "float16", "bfloat16"]
DTYPE_NAMES: tuple[str, ...] = get_args(DtypeName)
