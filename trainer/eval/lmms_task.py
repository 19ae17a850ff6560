"""A local lmms-eval task for referring-expression comprehension, read from files (no Hub, works offline).

lmms-eval finds extra tasks through `--include_path FOLDER`: each `*.yaml` there with a `task:` key is
one task, and `!function module.name` resolves against the `.py` files beside it. `write_rec_task` writes
such a folder: `<task>.yaml` (the `json` dataset builder of `datasets` over one JSONL file given as
`dataset_kwargs.data_files`, which loads with `HF_DATASETS_OFFLINE=1` and `HF_HUB_OFFLINE=1`) and
`pad_rec_utils.py` (the hooks, copied from `trainer/eval/lmms_tasks/`; see its docstring for the prompt
and the scoring rules, which are PAD's `trainer.eval.box_answer`'s). `write_rec_docs` writes the JSONL.
A user evaluates their own REC file the same way: write the docs, write the task, pass the folder.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from trainer.eval.boxes import Box

UTILS = "pad_rec_utils.py"
REC_METRIC = "rec_acc@0.5"
"""The task's score: Acc@0.5 (the mean of the per-sample hits); `rec_iou` and `unparseable` beside it."""

_TEMPLATE = """\
# PAD's local REC task (written by trainer.eval.lmms_task.write_rec_task): image + expression -> box.
task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data_file}
test_split: test
output_type: generate_until
doc_to_visual: !function pad_rec_utils.doc_to_visual
doc_to_text: !function pad_rec_utils.doc_to_text
doc_to_target: bbox
generation_kwargs:
  max_new_tokens: {max_new_tokens}
  temperature: 0
  num_beams: 1
process_results: !function pad_rec_utils.process_results
metric_list:
  - metric: {metric}
    aggregation: mean
    higher_is_better: true
  - metric: rec_iou
    aggregation: mean
    higher_is_better: true
  - metric: unparseable
    aggregation: mean
    higher_is_better: false
metadata:
  version: 0.0
"""


@dataclass(frozen=True)
class RecDoc:
    """One REC sample: an image file, an expression, and its box normalised in the frame the model saw."""

    question_id: str
    image: str
    expression: str
    bbox: Box


def write_rec_docs(path: str, docs: Iterable[RecDoc]) -> str:
    """Write the task's JSONL (image paths made absolute, as the task may run from anywhere); its path."""
    with open(path, "w", encoding="utf-8") as f:
        for doc in docs:
            row = {**asdict(doc), "image": os.path.abspath(doc.image), "bbox": list(doc.bbox)}
            f.write(json.dumps(row) + "\n")
    return os.path.abspath(path)


def write_rec_task(folder: str, task: str, data_file: str, max_new_tokens: int = 32) -> str:
    """Write `folder/<task>.yaml` and the hooks beside it, reading `data_file` (JSONL of `RecDoc`s)."""
    os.makedirs(folder, exist_ok=True)
    shutil.copyfile(os.path.join(os.path.dirname(__file__), "lmms_tasks", UTILS), os.path.join(folder, UTILS))
    path = os.path.join(folder, f"{task}.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(_TEMPLATE.format(task=task, data_file=json.dumps(os.path.abspath(data_file)),
                                 max_new_tokens=max_new_tokens, metric=json.dumps(REC_METRIC)))
    return path
