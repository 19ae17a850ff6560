"""Every sample's prediction, kept beside the table: `OUTPUT/predictions/TASK-SPLIT-MODEL.jsonl`.

One JSON line per sample (its id, the model's answer and what scoring made of it), written whole or not at
all (temporary file, then rename), with a `.meta.json` saying which model and settings produced it. The
table's numbers are recomputed from these lines, so they reproduce from the files alone; a rerun whose
model, settings and sample ids are unchanged reads the answers back instead of generating them again.
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

PREDICTIONS_DIR = "predictions"


def predictions_path(output_dir: str, task: str, split: str, model: str) -> str:
    return os.path.join(output_dir, PREDICTIONS_DIR, f"{task}-{split}-{model}.jsonl")


def _meta_path(path: str) -> str:
    return path.removesuffix(".jsonl") + ".meta.json"


def write_predictions(path: str, rows: Sequence[dict[str, Any]], meta: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    with open(_meta_path(path) + ".tmp", "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    os.replace(_meta_path(path) + ".tmp", _meta_path(path))
    os.replace(tmp, path)


def read_predictions(path: str) -> list[dict[str, Any]]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def reusable_answers(path: str, meta: dict[str, Any], ids: Sequence[str]) -> list[str] | None:
    """The answers of an earlier run with the same `meta` over the same sample ids (in order), else None."""
    if not (os.path.isfile(path) and os.path.isfile(_meta_path(path))):
        return None
    with open(_meta_path(path)) as f:
        if json.load(f) != json.loads(json.dumps(meta)):
            return None
    rows = read_predictions(path)
    if [row.get("id") for row in rows] != list(ids):
        return None
    return [str(row["answer"]) for row in rows]
