"""Read what `python -m lmms_eval` wrote, and refuse a run in which a requested task has no score.

lmms-eval 0.7.3 (`loggers/evaluation_tracker.py`) writes, under `--output_path OUT`, one folder per model
(`OUT/<model name sanitised>/`, e.g. `tmp__run__export-hf`) holding `<date>_results.json` (the scores:
`results[task]["<metric>,<filter>"]`, with `_stderr` entries beside each metric, plus `n-samples`,
`configs`, `versions`) and, with `--log_samples`, `<date>_samples_<task>.jsonl`: one line per document with
`doc_id`, `input` (the prompt text), `target`, `filtered_resps` (the answer after the task's filters; a
list when a document had several requests), and each metric's per-sample value from `process_results`.
The document itself is dropped. lmms-eval catches a failing task, model or file, logs it and still exits
0, and its writer swallows its own errors, so `read_results` checks every requested task for a numeric
score and raises `PadError` naming the first task without one. A requested group (e.g. `mmbench`) stands
for its leaf tasks (`group_subtasks` in the results JSON), each checked and returned under its own name.
"""

from __future__ import annotations

import glob
import json
import math
import os
from dataclasses import dataclass
from typing import Any

from pad_pipeline.core.errors import PadError


@dataclass(frozen=True)
class TaskScores:
    """One lmms-eval task: metric -> value (filter `none` dropped from the key; others kept as `m,filter`),
    the number of documents scored, and the JSONL of its per-sample predictions."""

    task: str
    metrics: dict[str, float]
    samples: str
    n_samples: int


@dataclass(frozen=True)
class LmmsResults:
    """Every requested task's scores (a group's: its leaf tasks'), and the results JSON they come from."""

    tasks: dict[str, TaskScores]
    results_file: str


def _metric_name(key: str) -> str | None:
    """`"acc,none"` -> `"acc"`, `"acc,flexible"` -> `"acc,flexible"`; stderr entries and `alias` -> None."""
    if "," not in key:
        return None
    metric, filt = key.split(",", 1)
    if metric.endswith("_stderr") or "_stderr_" in metric:
        return None
    return metric if filt == "none" else key


def task_metrics(entry: dict[str, Any]) -> dict[str, float]:
    """The numeric, finite metrics of one `results[task]` entry (strings such as "N/A" and NaN dropped)."""
    out: dict[str, float] = {}
    for key, value in entry.items():
        name = _metric_name(key)
        if name is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            out[name] = float(value)
    return out


def newest_results_file(output_path: str, since: float = 0.0) -> str | None:
    """The newest `*_results.json` under `output_path` modified at or after `since` (epoch seconds)."""
    found = [p for p in glob.glob(os.path.join(output_path, "**", "*_results.json"), recursive=True)
             if os.path.getmtime(p) >= since]
    return max(found, key=os.path.getmtime) if found else None


def leaf_tasks(written: dict[str, Any], task: str) -> list[str]:
    """`task` itself, or the leaf tasks of the group `task` (`group_subtasks`, nested groups expanded)."""
    subtasks = written.get("group_subtasks", {}).get(task) or []
    if not subtasks:
        return [task]
    return [leaf for sub in subtasks for leaf in leaf_tasks(written, sub)]


def read_results(output_path: str, tasks: list[str], since: float = 0.0, log_hint: str = "") -> LmmsResults:
    """Scores and sample files of `tasks` from the run that wrote under `output_path` at or after `since`.

    Raises PadError (one line, naming the task) when lmms-eval wrote no results, a task has no numeric
    score, or its samples file is missing or empty; `log_hint` ends the line (e.g. where its log is).
    """
    hint = f" ({log_hint})" if log_hint else ""
    results_file = newest_results_file(output_path, since)
    if results_file is None:
        raise PadError(f"lmms-eval wrote no *_results.json under {output_path}: task {tasks[0]} and any "
                       f"others have no score; see lmms-eval's errors above{hint}")
    with open(results_file, encoding="utf-8") as f:
        written = json.load(f)
    prefix = os.path.basename(results_file)[: -len("_results.json")]
    folder = os.path.dirname(results_file)
    scores: dict[str, TaskScores] = {}
    for task in (leaf for name in tasks for leaf in leaf_tasks(written, name)):
        metrics = task_metrics(written.get("results", {}).get(task, {}))
        if not metrics:
            raise PadError(f"lmms-eval task {task} produced no score in {results_file}; see lmms-eval's "
                           f"errors above{hint}")
        samples = os.path.join(folder, f"{prefix}_samples_{task}.jsonl")
        if not os.path.isfile(samples) or os.path.getsize(samples) == 0:
            raise PadError(f"lmms-eval task {task} has no per-sample predictions at {samples} "
                           f"(run it with --log_samples){hint}")
        n = int(written.get("n-samples", {}).get(task, {}).get("effective", 0))
        scores[task] = TaskScores(task=task, metrics=metrics, samples=samples, n_samples=n)
    return LmmsResults(tasks=scores, results_file=results_file)


def read_samples(path: str) -> list[dict[str, Any]]:
    """The rows of one `*_samples_<task>.jsonl`, in the file's order (lmms-eval's doc_id order)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def answer_text(sample: dict[str, Any]) -> str:
    """The model's answer of one logged sample (`filtered_resps`, unwrapped when it is a 1-list)."""
    resp = sample.get("filtered_resps", "")
    while isinstance(resp, list) and len(resp) == 1:
        resp = resp[0]
    return resp if isinstance(resp, str) else json.dumps(resp)
