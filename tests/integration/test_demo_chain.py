"""The demo commands end to end, each as a user runs it: `pad annotate manifests/demo.yaml` ->
`pad pretrain manifests/pretrain-demo.yaml` -> `pad sft manifests/sft-demo.yaml` (Ray Train, ZeRO-3 on CPU,
stage 2 initialised from stage 1's export, HF export at the end) -> `pad eval` of both stages on benchmark
files in the real formats (COCO captions, refer pickles + COCO instances, lmms-lab parquet) written here."""

import json
import os
import pickle
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image
from safetensors.torch import load_file

from trainer.eval.rec_task import score_rows
from trainer.eval.run import score_caption_rows

pytestmark = pytest.mark.integration
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGES = os.path.join(REPO, "manifests", "demo", "images")


def _pad(*args: str, ok: bool = True) -> str:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a local Ray instance
    env.update(PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "pad_pipeline.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=400)
    assert (proc.returncode == 0) == ok, (proc.stdout + proc.stderr)[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("chain")
    build, stage1, stage2 = (str(root / n) for n in ("demo", "pretrain", "sft"))
    _pad("annotate", "manifests/demo.yaml", "--out", build)
    _pad("pretrain", "manifests/pretrain-demo.yaml", "--set", f"data.path={build}", "--set",
         f"train.output_dir={stage1}", "--set", "train.max_steps=4", "--set", "train.progress=false")
    log = _pad("sft", "manifests/sft-demo.yaml", "--set", f"init.projector={stage1}", "--set",
               f"train.output_dir={stage2}", "--set", "train.max_steps=4", "--set", "train.progress=false",
               "--set", "launch.mode=ray", "--set", "launch.cpus_per_worker=1", "--set", "export.formats=[hf]")
    return {"root": root, "stage1": stage1, "stage2": stage2, "sft_log": log}


def test_annotate_pretrain_sft(chain):
    stage1, stage2 = chain["stage1"], chain["stage2"]
    assert "40 conversations, template vicuna_v1; ray launch" in chain["sft_log"]

    rows = [json.loads(line) for line in open(os.path.join(stage2, "metrics.jsonl"))]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(r["samples"] == 8 and r["target_tokens"] > 0 and r["tokens_per_s"] > 0 for r in rows)
    assert all(0.0 < r["loss"] < 20.0 for r in rows)
    final = os.path.join(stage2, "checkpoints", "step-00000004")
    assert {"llm.safetensors", "projector.safetensors", "trainer_state.json"} <= set(os.listdir(final))
    assert os.path.isfile(os.path.join(stage2, "config.yaml")) and os.path.isdir(os.path.join(stage2, "tensorboard"))

    # stage 2 started from stage 1's projector and moved it
    start = load_file(os.path.join(stage1, "export", "projector.safetensors"))
    trained = load_file(os.path.join(final, "projector.safetensors"))
    drift = max(float((trained[k].float() - start[k].float()).abs().max()) for k in start)
    assert 0.0 < drift < 0.05

    assert "checked 40 entries" in _pad("sft", "manifests/sft-demo.yaml", "--check")


# Benchmark files in the formats users have them, over the demo images.
SCENES = ["scene_00.jpg", "scene_01.jpg", "scene_02.jpg", "scene_05.png", "scene_06.jpg"]


def _size(name: str) -> tuple[int, int]:
    with Image.open(os.path.join(IMAGES, name)) as im:
        return im.size


def _write_benchmarks(folder) -> dict[str, str]:
    os.makedirs(folder, exist_ok=True)
    images = [{"id": 100 + i, "file_name": n, "width": _size(n)[0], "height": _size(n)[1]}
              for i, n in enumerate(SCENES)]
    captions = {"info": {}, "licenses": [], "images": images, "annotations": [
        {"id": 1000 + k, "image_id": im["id"], "caption": text}
        for k, (im, text) in enumerate((im, t) for im in images for t in ("a photo of a scene", "an old picture"))]}
    boxes = []
    for i, im in enumerate(images):
        w, h = im["width"], im["height"]
        boxes.append({"id": 500 + i, "image_id": im["id"], "category_id": 1, "iscrowd": 0,
                      "bbox": [w * 0.1, h * 0.2, w * 0.5, h * 0.6], "area": w * h * 0.3})
    instances = {"images": images, "annotations": boxes, "categories": [{"id": 1, "name": "thing"}]}
    refs = [{"ref_id": 7 + i, "ann_id": b["id"], "image_id": b["image_id"], "category_id": 1,
             "split": "val" if i < 4 else "testA", "file_name": f"COCO_train2014_{b['image_id']:012d}_{b['id']}.jpg",
             "sentences": [{"sent": f"the thing on the left {i}", "raw": f"The thing on the left {i}.",
                            "sent_id": 70 + i, "tokens": ["the", "thing"]}]} for i, b in enumerate(boxes)]
    paths = {"captions": str(folder / "captions_val2017.json"), "instances": str(folder / "instances.json"),
             "refs": str(folder / "refs(unc).p"), "parquet": str(folder / "val-00000-of-00001.parquet")}
    for key, data in (("captions", captions), ("instances", instances)):
        with open(paths[key], "w") as f:
            json.dump(data, f)
    with open(paths["refs"], "wb") as f:
        pickle.dump(refs, f, protocol=2)
    rows = []
    for i, (im, b) in enumerate(zip(images[:3], boxes, strict=False)):
        with open(os.path.join(IMAGES, im["file_name"]), "rb") as f:
            data = f.read()
        rows.append({"question_id": str(900 + i), "image": {"bytes": data, "path": None}, "question": "x",
                     "answer": [f"the thing {i}", f"that thing {i}"], "bbox": b["bbox"], "segmentation": [],
                     "iscrowd": 0, "file_name": im["file_name"]})
    pq.write_table(pa.Table.from_pylist(rows), paths["parquet"])
    return paths


def test_pad_eval_of_both_stages(chain):
    root, stage1, stage2 = chain["root"], chain["stage1"], chain["stage2"]
    files = _write_benchmarks(root / "bench")
    out = root / "eval"
    tiny = {"vision": {"checkpoint": "tiny-random"}, "llm": {"checkpoint": "tiny-random"}}
    manifest = {
        "output_dir": str(out),
        "models": {"baseline": {"stage1": "random", "model": tiny, "stage2": stage2},
                   "patch-aligned": {"stage1": stage1, "stage2": os.path.join(stage2, "export-hf")}},
        "captions": {"annotations": files["captions"], "images": IMAGES, "max_new_tokens": 8},
        "rec": {"splits": {"refcoco_val": {"refs": files["refs"], "instances": files["instances"], "images": IMAGES,
                                           "split": "val"},
                           "refcoco_parquet": {"format": "parquet", "path": files["parquet"]}},
                "max_new_tokens": 12},
        "generation": {"batch_size": 4, "num_workers": 0},
    }
    path = root / "eval.yaml"
    path.write_text(yaml.safe_dump(manifest))
    log = _pad("eval", str(path))
    report = json.loads((out / "eval.json").read_text())
    md = (out / "eval.md").read_text()
    assert "## Table 4: captions" in md and "## Table 5: referring-expression comprehension" in md
    assert "| Δ patch-aligned − baseline |" in md and "SPICE: not computed" in md
    assert "not computed: SPICE" not in md  # the reason does not repeat the metric
    assert "captions / patch-aligned: 5/5 answers" in log and "rec refcoco_val / baseline: 4/4 answers" in log

    # every sample's prediction is kept, and the table's numbers come back from those lines alone
    preds = out / "predictions"
    for model in ("baseline", "patch-aligned"):
        caption_rows = [json.loads(x) for x in (preds / f"captions-all-{model}.jsonl").read_text().splitlines()]
        assert [r["id"] for r in caption_rows] == ["100", "101", "102", "103", "104"]
        assert score_caption_rows(caption_rows)["scores"] == report["captions"]["scores"][model]
        for split, count in (("refcoco_val", 4), ("refcoco_parquet", 6)):
            rec_rows = [json.loads(x) for x in (preds / f"rec-{split}-{model}.jsonl").read_text().splitlines()]
            assert len(rec_rows) == count
            cell = report["rec"]["splits"][split][model]
            assert score_rows(rec_rows, "image").accuracy == cell["accuracy"] and cell["total"] == count
    assert set(report["captions"]["scores"]["baseline"]) >= {"METEOR", "ROUGE_L", "CIDEr", "Bleu_4"}

    # the HF export answers exactly as the run it was exported from (greedy, float32)
    for split in ("refcoco_val", "refcoco_parquet"):
        run_answers, hf_answers = ([json.loads(x)["answer"] for x in (preds / f"rec-{split}-{m}.jsonl").read_text()
                                    .splitlines()] for m in ("baseline", "patch-aligned"))
        assert run_answers == hf_answers

    # a rerun reads the answers back instead of generating them, and reports the same numbers
    again = _pad("eval", str(path))
    assert again.count("reusing the") == 6
    assert json.loads((out / "eval.json").read_text())["rec"] == report["rec"]


def test_missing_benchmark_file_is_one_line_before_any_model_loads(chain, tmp_path):
    manifest = {"output_dir": str(tmp_path / "eval"), "models": {"m": {"stage2": chain["stage2"]}},
                "rec": {"splits": {"refcoco_val": {"refs": str(tmp_path / "refs(unc).p"),
                                                   "instances": str(tmp_path / "instances.json"),
                                                   "images": IMAGES, "split": "val"}}}}
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(manifest))
    log = _pad("eval", str(path), ok=False)
    errors = [line for line in log.splitlines() if line.startswith("pad: error:")]
    assert len(errors) == 1 and "rec.splits.refcoco_val.refs" in errors[0] and "refs(unc).p" in errors[0]
    assert "rec / m" not in log  # nothing was loaded


def test_pad_eval_runs_lmms_eval_which_answers_and_scores_as_pad_eval(chain):
    """lmms-eval's llava_hf on the run's HF export, on a local REC task over the same expressions as pad eval's
    refer split: the same answers sample by sample, so the same Acc@0.5, collected into eval.md's Table 8."""
    from trainer.eval.boxes import image_to_normalised
    from trainer.eval.lmms_results import answer_text, read_samples
    from trainer.eval.lmms_task import REC_METRIC, RecDoc, write_rec_docs, write_rec_task
    from trainer.eval.readers import read_refer

    root = chain["root"]
    files = _write_benchmarks(root / "bench-lmms")
    items = read_refer(files["refs"], files["instances"], IMAGES, "val")
    docs = [RecDoc(i.sample_id, str(i.image), i.expression, image_to_normalised(i.box, i.width, i.height))
            for i in items]
    tasks = root / "lmms-tasks"
    tasks.mkdir()
    write_rec_task(str(tasks), "pad_rec_demo", write_rec_docs(str(tasks / "docs.jsonl"), docs), max_new_tokens=12)
    out = root / "eval-lmms"
    manifest = {"output_dir": str(out), "models": {"exported": {"stage2": os.path.join(chain["stage2"], "export-hf")}},
                "rec": {"splits": {"refcoco_val": {"refs": files["refs"], "instances": files["instances"],
                                                   "images": IMAGES, "split": "val"}}, "max_new_tokens": 12},
                "lmms_eval": {"tasks": ["pad_rec_demo"], "include_path": str(tasks)},
                "generation": {"batch_size": 1, "num_workers": 0}}
    (root / "eval-lmms.yaml").write_text(yaml.safe_dump(manifest))
    _pad("eval", str(root / "eval-lmms.yaml"))
    report = json.loads((out / "eval.json").read_text())
    lmms = report["lmms_eval"]
    assert lmms["tasks"] == ["pad_rec_demo"] and lmms["headline"]["pad_rec_demo"] == REC_METRIC
    ours = [json.loads(x) for x in (out / "predictions" / "rec-refcoco_val-exported.jsonl").read_text().splitlines()]
    samples = sorted(read_samples(lmms["samples"]["exported"]["pad_rec_demo"]), key=lambda s: s["doc_id"])
    assert [answer_text(s) for s in samples] == [r["answer"] for r in ours]
    assert lmms["scores"]["exported"]["pad_rec_demo"][REC_METRIC] == report["rec"]["splits"]["refcoco_val"]["exported"][
        "accuracy"]
    assert "## Table 8: other lmms-eval tasks" in (out / "eval.md").read_text()
