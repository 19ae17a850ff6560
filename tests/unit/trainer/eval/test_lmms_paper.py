"""The paper's Tables 6-7 task list names tasks of the installed lmms-eval, each with the metric it reports."""

import glob
import importlib.util
import os
import re

import pytest

from trainer.eval.lmms_paper import PAPER_TASKS, paper_task_names


def _tasks_dir() -> str:
    spec = importlib.util.find_spec("lmms_eval")  # located, not imported (its import is slow and noisy)
    if spec is None or spec.origin is None:
        pytest.skip("lmms-eval is not installed (the eval extra)")
    return os.path.join(os.path.dirname(spec.origin), "tasks")


def _task_yaml(tasks_dir: str, task: str) -> str:
    pattern = re.compile(rf"^task:\s*[\"']?{re.escape(task)}[\"']?\s*$", re.M)
    for path in glob.glob(os.path.join(tasks_dir, "**", "*.yaml"), recursive=True):
        with open(path, encoding="utf-8") as f:
            if pattern.search(f.read()):
                return path
    raise AssertionError(f"lmms-eval has no task {task}")


def test_every_paper_task_is_registered_with_its_metric():
    tasks_dir = _tasks_dir()
    assert len(paper_task_names()) == 9 == len(set(paper_task_names()))
    for entry in PAPER_TASKS:
        path = _task_yaml(tasks_dir, entry.task)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        include = re.search(r"^include:\s*(\S+)", text, re.M)
        if include:
            with open(os.path.join(os.path.dirname(path), include.group(1)), encoding="utf-8") as f:
                text += f.read()
        for metric in (entry.metric, *entry.also):
            assert re.search(rf"metric:\s*{re.escape(metric)}\s*$", text, re.M), (entry.task, metric)
    assert [t.table for t in PAPER_TASKS] == [6] * 4 + [7] * 5
