"""The names of the export formats, their folders in a run and the export dtypes: the one list the `pad export`
command line, the manifests (`export.formats`, `export.dtype`) and the exporters read (no torch imported here).
"""

from __future__ import annotations

from trainer.run_layout import EXPORT_FOLDERS

FORMATS = ("hf", "llava", "pad")
FOLDERS = EXPORT_FOLDERS
DTYPE_NAMES = ("float32", "float16", "bfloat16")
