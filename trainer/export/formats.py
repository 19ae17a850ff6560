"""The names of the export formats, their folders in a run and the export dtypes: the one list the `pad export`
command line, the manifests (`export.formats`, `export.dtype`) and the exporters read (no torch imported here).
"""

from __future__ import annotations

FORMATS = ("hf", "llava", "pad")
FOLDERS = {"pad": "export", "hf": "export-hf", "llava": "export-llava"}
DTYPE_NAMES = ("float32", "float16", "bfloat16")
