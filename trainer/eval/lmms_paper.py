"""The paper's Tables 6-7 (arXiv 2505.17316) as lmms-eval 0.7.3 tasks, and which metric is each table's number.

Every name below is a `task:` of lmms-eval 0.7.3's registry (`lmms_eval/tasks/<folder>/<task>.yaml`,
checked by `tests/unit/trainer/eval/test_lmms_paper.py` when lmms-eval is installed). Metrics are the keys
lmms-eval writes in its results JSON (`"<metric>,none"`), all on lmms-eval's own scale (fractions for
exact_match; MME's scores are sums over its subtasks, perception out of 2000 and cognition out of 800).
`judge` marks the tasks whose score needs an LLM judge (an OpenAI-compatible API, lmms-eval's
`OPENAI_API_KEY` / `API_TYPE`): MM-Vet's GPT-4 grading and MMBench's GPT choice extraction.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperTask:
    """One column of Tables 6-7: the benchmark, its lmms-eval task and the metric the table reports."""

    table: int
    benchmark: str
    task: str
    metric: str
    judge: bool = False
    also: tuple[str, ...] = ()


PAPER_TASKS: tuple[PaperTask, ...] = (
    PaperTask(6, "GQA", "gqa", "exact_match"),  # testdev-balanced, as LLaVA-1.5
    PaperTask(6, "ScienceQA-IMG", "scienceqa_img", "exact_match"),
    PaperTask(6, "VizWiz-VQA val", "vizwiz_vqa_val", "exact_match"),
    PaperTask(6, "OK-VQA val2014", "ok_vqa_val2014", "exact_match"),
    PaperTask(7, "MMMU val", "mmmu_val", "mmmu_acc"),
    PaperTask(7, "MM-Vet", "mmvet", "gpt_eval_score", judge=True),
    PaperTask(7, "CMMMU val", "cmmmu_val", "cmmmu_acc"),
    PaperTask(7, "MMBench-EN dev", "mmbench_en_dev", "gpt_eval_score", judge=True),
    PaperTask(7, "MME", "mme", "mme_perception_score", also=("mme_cognition_score",)),
)


def paper_task_names() -> list[str]:
    """The lmms-eval task names of Tables 6-7, in the tables' order."""
    return [t.task for t in PAPER_TASKS]
