"""lmms-eval itself (`python -m lmms_eval`, `llava_hf`) on a tiny stage-2 transformers export, offline, through
PAD's bridge: it loads, generates and scores PAD's local REC task, and its score equals PAD's own scoring
(`parse_box` + `score_rec`) of the same logged predictions against the same boxes; a task whose data file
is missing makes the bridge raise although lmms-eval exits 0.

A random tiny LLM never writes a box, which would make every score 0 and the comparison empty, so the
export's `generation_config.json` carries a `sequence_bias` that makes greedy decoding write ANSWER and stop
(each prefix of the answer biases its next token by 2^length, more than all shorter matches together). The
truths are set so that two samples hit and one misses."""

import os

import numpy as np
import pytest
from PIL import Image
from transformers import AutoTokenizer, GenerationConfig

from pad_pipeline.core.errors import PadError
from trainer.config.sections import ModelConfig
from trainer.data.chat.jinja import jinja_for
from trainer.data.chat.templates import get_template
from trainer.eval.box_answer import REC_PROMPT, box_iou, parse_box, score_rec
from trainer.eval.boxes import Box, image_to_square, square_to_image
from trainer.eval.lmms import LmmsRequest, run_lmms_eval
from trainer.eval.lmms_results import answer_text, read_samples
from trainer.eval.lmms_task import REC_METRIC, RecDoc, write_rec_docs, write_rec_task
from trainer.export.hf import export_hf
from trainer.export.spec import ExportSpec
from trainer.models.loading import build_vlm

pytestmark = pytest.mark.integration
ANSWER: Box = (0.20, 0.25, 0.60, 0.70)
OFFLINE = {"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> str:
    """A stage-2 export of the tiny model with the vicuna_v1 chat template, as `pad sft` writes RUN/export-hf."""
    cfg = ModelConfig.model_validate({"vision": {"checkpoint": "tiny-random"}, "projector": {"kind": "mlp2x_gelu"},
                                      "llm": {"checkpoint": "tiny-random", "gradient_checkpointing": False}})
    spec = ExportSpec(stage=2, model=cfg, image_aspect="pad", max_length=256, dtype="float32", template="vicuna_v1")
    out = str(tmp_path_factory.mktemp("run") / "export-hf")
    export_hf(build_vlm(cfg, seed=3), spec, out, jinja_for(get_template("vicuna_v1")))
    tokenizer = AutoTokenizer.from_pretrained(out)
    ids = tokenizer.encode("[" + ", ".join(f"{v:.2f}" for v in ANSWER) + "]", add_special_tokens=False)
    ids.append(tokenizer.eos_token_id)
    generation = GenerationConfig.from_pretrained(out)
    generation.sequence_bias = [[ids[:k], 16.0 * 2.0**k] for k in range(1, len(ids) + 1)]
    generation.save_pretrained(out)
    return out


def _docs(folder) -> list[RecDoc]:
    """Three images of different shapes, each box given in the padded square the model sees."""
    docs = []
    near = (ANSWER[0] + 0.05, ANSWER[1], ANSWER[2] + 0.05, ANSWER[3] + 0.05)  # IoU 0.7 with ANSWER
    far = (0.0, 0.0, 0.3, 0.3)
    for i, ((w, h), truth, expression) in enumerate([((160, 96), ANSWER, "the red circle"),
                                                     ((80, 120), near, "the small square"),
                                                     ((100, 100), far, "the blue triangle")]):
        path = os.path.join(folder, f"scene{i}.png")
        Image.fromarray(np.random.RandomState(i).randint(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        pixels = square_to_image(truth, w, h)  # a box the image holds, given to the task in the padded square
        docs.append(RecDoc(f"q{i}", path, expression, image_to_square(pixels, w, h)))
    return docs


def _request(export: str, tmp_path, tasks: list[str], include: str) -> LmmsRequest:
    env = {**OFFLINE, "HF_HOME": str(tmp_path / "hf")}  # the datasets cache stays in the test's folder
    return LmmsRequest(export=export, tasks=tasks, output_path=str(tmp_path / "out"), device="cpu",
                       dtype="float32", include_path=include, extra_env=env)


def test_llava_hf_scores_local_rec_task_as_pad_does(export, tmp_path):
    docs = _docs(tmp_path)
    tasks = str(tmp_path / "tasks")
    write_rec_task(tasks, "pad_rec_tiny", write_rec_docs(str(tmp_path / "rec.jsonl"), docs))
    results = run_lmms_eval(_request(export, tmp_path, ["pad_rec_tiny"], tasks))
    scores = results.tasks["pad_rec_tiny"]
    assert scores.n_samples == 3 and {REC_METRIC, "rec_iou", "unparseable"} <= set(scores.metrics)
    samples = sorted(read_samples(scores.samples), key=lambda s: s["doc_id"])
    assert [s["input"] for s in samples] == [REC_PROMPT.format(expression=d.expression) for d in docs]
    answers = [answer_text(s) for s in samples]
    boxes = [parse_box(a) for a in answers]
    assert all(b == pytest.approx(ANSWER) for b in boxes)  # it generated, through lmms-eval's llava_hf
    ours = score_rec(boxes, [d.bbox for d in docs])
    assert scores.metrics[REC_METRIC] == pytest.approx(ours.accuracy, abs=1e-12)
    assert scores.metrics["unparseable"] == pytest.approx(ours.unparseable / ours.total, abs=1e-12)
    hits = [float(p is not None and box_iou(p, d.bbox) >= 0.5) for p, d in zip(boxes, docs, strict=True)]
    assert hits == [1.0, 1.0, 0.0] and scores.metrics[REC_METRIC] == pytest.approx(2 / 3)
    assert [s[REC_METRIC] for s in samples] == hits  # sample by sample, not only the mean


def test_missing_data_file_raises_though_lmms_eval_exits_zero(export, tmp_path):
    tasks = str(tmp_path / "tasks")
    write_rec_task(tasks, "pad_rec_gone", str(tmp_path / "never-written.jsonl"))
    with pytest.raises(PadError, match="pad_rec_gone") as e:
        run_lmms_eval(_request(export, tmp_path, ["pad_rec_gone"], tasks))
    message = str(e.value)
    assert "exited" not in message and "\n" not in message  # lmms-eval itself exited 0
    assert "lmms-eval said: " in message and "FileNotFoundError" in message  # its own error, passed on
