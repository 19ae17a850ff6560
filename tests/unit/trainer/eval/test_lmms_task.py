"""PAD's local lmms-eval REC task: its hooks score exactly as `trainer.eval.box_answer` does, and the
written folder is a task lmms-eval can read (YAML keys, absolute data path, hooks beside it)."""

import json
import os
import random

import pytest
import yaml

from trainer.eval.box_answer import REC_PROMPT, parse_box, score_rec
from trainer.eval.lmms_task import REC_METRIC, UTILS, RecDoc, write_rec_docs, write_rec_task
from trainer.eval.lmms_tasks import pad_rec_utils

ANSWERS = ["[0.12, 0.34, 0.56, 0.78]", "The box is [0.1,0.2,0.3,0.4].",
           "[ .1 , 0.2 , 1 , 0.9 ] and [0.5, 0.5, 0.6, 0.6]", "[0.1, 0.2, 0.3]", "[0.1, 0.2, 0.3, 0.4",
           "0.1, 0.2, 0.3, 0.4", "[0.5, 0.2, 0.3, 0.4]", "[-0.1, 0, 0.5, 0.5]", "[0.2, 0.2, 1.2, 0.5]",
           "[+0.2, 0.2, 0.6, 0.5]", "", "[12, 30, 55, 70]", "[0.3, 0.3, 0.3, 0.6]",
           "[0.10, 0.20, 0.50, 0.60]</s>", "ASSISTANT: [0.11, 0.19, 0.52, 0.61] is the red circle"]


@pytest.mark.parametrize("answer", ANSWERS)
def test_task_parser_is_pads(answer):
    assert pad_rec_utils.parse_box(answer) == parse_box(answer)


def test_task_score_is_pads_on_random_answers():
    rng = random.Random(0)
    truths, answers = [], []
    for _ in range(300):
        x0, y0 = rng.uniform(0, 0.6), rng.uniform(0, 0.6)
        truth = (x0, y0, x0 + rng.uniform(0.05, 0.4), y0 + rng.uniform(0.05, 0.4))
        jitter = [v + rng.gauss(0, 0.08) for v in truth]
        answers.append(rng.choice(ANSWERS) if rng.random() < 0.2 else "[" + ", ".join(f"{v:.2f}" for v in jitter) + "]")
        truths.append(truth)
    rows = [pad_rec_utils.process_results({"bbox": list(t)}, [a]) for t, a in zip(truths, answers, strict=True)]
    ours = score_rec([parse_box(a) for a in answers], truths)
    assert 0 < ours.hits < ours.total and ours.unparseable > 0  # both hits and misses, so the check bites
    assert sum(r[REC_METRIC] for r in rows) == ours.hits
    assert sum(r["unparseable"] for r in rows) == ours.unparseable


def test_task_prompt_is_llava_rec_prompt(tmp_path):
    assert pad_rec_utils.doc_to_text({"expression": "the red circle"}) == REC_PROMPT.format(expression="the red circle")
    from PIL import Image

    Image.new("L", (30, 20)).save(tmp_path / "g.png")
    (image,) = pad_rec_utils.doc_to_visual({"image": str(tmp_path / "g.png")})
    assert image.mode == "RGB" and image.size == (30, 20)


class _TagLoader(yaml.SafeLoader):
    """Reads lmms-eval's `!function module.name` tags as plain strings."""


_TagLoader.add_constructor("!function", lambda loader, node: "function:" + loader.construct_scalar(node))


def test_written_task_folder(tmp_path, monkeypatch):
    docs = [RecDoc("q0", "scene.png", "the red circle", (0.1, 0.2, 0.5, 0.6))]
    monkeypatch.chdir(tmp_path)
    data = write_rec_docs("rec.jsonl", docs)
    path = write_rec_task(str(tmp_path / "tasks"), "pad_rec_x", data, max_new_tokens=7)
    with open(path) as f:
        cfg = yaml.load(f, Loader=_TagLoader)
    assert cfg["task"] == "pad_rec_x" and cfg["dataset_path"] == "json" and cfg["test_split"] == "test"
    assert cfg["dataset_kwargs"]["data_files"]["test"] == os.path.join(tmp_path, "rec.jsonl")
    assert cfg["generation_kwargs"]["max_new_tokens"] == 7
    assert cfg["process_results"] == "function:pad_rec_utils.process_results"
    assert [m["metric"] for m in cfg["metric_list"]][0] == REC_METRIC
    assert os.path.isfile(tmp_path / "tasks" / UTILS)
    with open(data) as f:
        row = json.loads(f.readline())
    assert row == {"question_id": "q0", "image": os.path.join(tmp_path, "scene.png"), "expression": "the red circle",
                   "bbox": [0.1, 0.2, 0.5, 0.6]}
