"""lmms-eval itself (`python -m lmms_eval`, `llava_hf`) on a tiny stage-2 transformers export, offline, through
PAD's bridge: it loads, generates and scores PAD's local REC task, and its score equals PAD's own scoring
(`parse_box` + `score_rec`) of the same logged predictions against the same boxes; a task whose data file
is missing makes the bridge raise although lmms-eval exits 0."""

import os

import numpy as np
import pytest
from PIL import Image

from pad_pipeline.core.errors import PadError
from trainer.config.sections import ModelConfig
from trainer.data.chat.jinja import jinja_for
from trainer.data.chat.templates import get_template
from trainer.eval.box_answer import REC_PROMPT, box_iou, parse_box, score_rec
from trainer.eval.boxes import image_to_square
from trainer.eval.lmms import LmmsRequest, run_lmms_eval
from trainer.eval.lmms_results import answer_text, read_samples
from trainer.eval.lmms_task import REC_METRIC, RecDoc, write_rec_docs, write_rec_task
from trainer.export.hf import export_hf
from trainer.export.spec import ExportSpec
from trainer.models.loading import build_vlm

pytestmark = pytest.mark.integration
OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> str:
    """A stage-2 export of the tiny model with the vicuna_v1 chat template, as `pad sft` writes RUN/export-hf."""
    cfg = ModelConfig.model_validate({"vision": {"checkpoint": "tiny-random"}, "projector": {"kind": "mlp2x_gelu"},
                                      "llm": {"checkpoint": "tiny-random", "gradient_checkpointing": False}})
    spec = ExportSpec(stage=2, model=cfg, image_aspect="pad", max_length=256, dtype="float32", template="vicuna_v1")
    out = str(tmp_path_factory.mktemp("run") / "export-hf")
    export_hf(build_vlm(cfg, seed=3), spec, out, jinja_for(get_template("vicuna_v1")))
    return out


def _docs(folder) -> list[RecDoc]:
    """Three images of different shapes, each box given in the padded square the model sees."""
    docs = []
    for i, ((w, h), pixels, expression) in enumerate([((160, 96), (20, 10, 90, 60), "the red circle"),
                                                      ((80, 120), (5, 40, 70, 110), "the small square"),
                                                      ((100, 100), (0, 0, 50, 50), "the blue triangle")]):
        path = os.path.join(folder, f"scene{i}.png")
        Image.fromarray(np.random.RandomState(i).randint(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        docs.append(RecDoc(f"q{i}", path, expression, image_to_square(pixels, w, h)))
    return docs


def _request(export: str, tmp_path, tasks: list[str], include: str) -> LmmsRequest:
    env = {**OFFLINE, "HF_HOME": str(tmp_path / "hf")}  # the datasets cache stays in the test's folder
    return LmmsRequest(export=export, tasks=tasks, output_path=str(tmp_path / "out"), device="cpu",
                       dtype="float32", include_path=include, extra_env=env)


def test_llava_hf_scores_local_rec_task_as_pad_does(export, tmp_path):
    docs = _docs(tmp_path)
    tasks = str(tmp_path / "tasks")
    write_rec_task(tasks, "pad_rec_tiny", write_rec_docs(str(tmp_path / "rec.jsonl"), docs), max_new_tokens=24)
    results = run_lmms_eval(_request(export, tmp_path, ["pad_rec_tiny"], tasks))
    scores = results.tasks["pad_rec_tiny"]
    assert scores.n_samples == 3 and {REC_METRIC, "rec_iou", "unparseable"} <= set(scores.metrics)
    samples = sorted(read_samples(scores.samples), key=lambda s: s["doc_id"])
    assert [s["input"] for s in samples] == [REC_PROMPT.format(expression=d.expression) for d in docs]
    answers = [answer_text(s) for s in samples]
    assert all(a.strip() for a in answers)  # it generated
    ours = score_rec([parse_box(a) for a in answers], [d.bbox for d in docs])
    assert scores.metrics[REC_METRIC] == pytest.approx(ours.accuracy, abs=1e-12)
    assert scores.metrics["unparseable"] == pytest.approx(ours.unparseable / ours.total, abs=1e-12)
    boxes = [parse_box(a) for a in answers]
    hits = [float(p is not None and box_iou(p, d.bbox) >= 0.5) for p, d in zip(boxes, docs, strict=True)]
    assert [s[REC_METRIC] for s in samples] == hits  # sample by sample, not only the mean

def test_missing_data_file_raises_though_lmms_eval_exits_zero(export, tmp_path):
    tasks = str(tmp_path / "tasks")
    write_rec_task(tasks, "pad_rec_gone", str(tmp_path / "never-written.jsonl"))
    with pytest.raises(PadError, match="pad_rec_gone") as e:
        run_lmms_eval(_request(export, tmp_path, ["pad_rec_gone"], tasks))
    assert "exited" not in str(e.value) and "\n" not in str(e.value)  # lmms-eval itself said 0
