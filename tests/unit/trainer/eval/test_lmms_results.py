"""Reading lmms-eval 0.7.3's output folder: metrics without stderr/alias/N/A/NaN, filters kept, each task's
samples file found by the results file's date prefix, and one-line PadErrors naming the task without a score."""

import json
import os
import time

import pytest

from pad_pipeline.core.errors import PadError
from trainer.eval.lmms_results import answer_text, newest_results_file, read_results, read_samples, task_metrics

ENTRY = {"alias": "gqa", "exact_match,none": 0.625, "exact_match_stderr,none": 0.1, "exact_match_stderr_clt,none": 0.1,
         "exact_match_stderr_clustered,none": "N/A", "acc,flexible": 0.5, "broken,none": float("nan"),
         "flag,none": True}


def _write(folder, prefix, results: dict, samples: dict[str, list[dict]]) -> str:
    model = os.path.join(folder, "tmp__run__export-hf")
    os.makedirs(model, exist_ok=True)
    n = {t: {"original": len(s), "effective": len(s)} for t, s in samples.items()}
    path = os.path.join(model, f"{prefix}_results.json")
    with open(path, "w") as f:
        json.dump({"results": results, "n-samples": n}, f)
    for task, rows in samples.items():
        with open(os.path.join(model, f"{prefix}_samples_{task}.jsonl"), "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    return path


def test_task_metrics_keeps_scores_only():
    assert task_metrics(ENTRY) == {"exact_match": 0.625, "acc,flexible": 0.5}


def test_reads_every_task_and_its_samples(tmp_path):
    rows = [{"doc_id": 0, "filtered_resps": ["yes"], "exact_match": 1.0}, {"doc_id": 1, "filtered_resps": "no"}]
    path = _write(tmp_path, "20261205_101010", {"gqa": ENTRY, "mme": {"mme_perception_score,none": 1234.5}},
                  {"gqa": rows, "mme": rows[:1]})
    got = read_results(str(tmp_path), ["gqa", "mme"])
    assert got.results_file == path
    assert got.tasks["gqa"].metrics["exact_match"] == 0.625 and got.tasks["gqa"].n_samples == 2
    assert got.tasks["mme"].metrics == {"mme_perception_score": 1234.5}
    assert got.tasks["mme"].samples.endswith("20261205_101010_samples_mme.jsonl")
    assert [answer_text(s) for s in read_samples(got.tasks["gqa"].samples)] == ["yes", "no"]


def test_newest_run_after_since_is_read(tmp_path):
    old = _write(tmp_path, "20261205_090000", {"gqa": {"exact_match,none": 0.1}}, {"gqa": [{"doc_id": 0}]})
    os.utime(old, (time.time() - 100, time.time() - 100))
    assert newest_results_file(str(tmp_path), since=time.time() - 10) is None
    new = _write(tmp_path, "20261205_100000", {"gqa": {"exact_match,none": 0.9}}, {"gqa": [{"doc_id": 0}]})
    assert read_results(str(tmp_path), ["gqa"], since=time.time() - 10).tasks["gqa"].metrics["exact_match"] == 0.9
    assert newest_results_file(str(tmp_path)) == new


@pytest.mark.parametrize("results,samples,message", [
    ({"gqa": ENTRY}, {"gqa": [{"doc_id": 0}]}, "task mme produced no score"),  # mme never ran
    ({"gqa": ENTRY, "mme": {"alias": "mme", "x,none": float("nan")}}, {"gqa": [{"doc_id": 0}]}, "task mme produced no"),
    ({"gqa": ENTRY, "mme": {"x,none": 3.0}}, {"gqa": [{"doc_id": 0}], "mme": []}, "task mme has no per-sample"),
])
def test_task_without_score_or_samples_raises_naming_it(tmp_path, results, samples, message):
    _write(tmp_path, "20261205_101010", results, samples)
    with pytest.raises(PadError, match=message) as e:
        read_results(str(tmp_path), ["gqa", "mme"], log_hint="log: x.log")
    assert "\n" not in str(e.value) and str(e.value).endswith("(log: x.log)")


def test_no_results_file_raises(tmp_path):
    with pytest.raises(PadError, match="wrote no .*task gqa"):
        read_results(str(tmp_path), ["gqa"])


def test_group_stands_for_its_leaf_tasks(tmp_path):
    rows = [{"doc_id": 0, "filtered_resps": "A"}]
    path = _write(tmp_path, "20261205_101010", {"en_dev": {"gpt_eval_score,none": 61.0}, "cn_dev": {"x,none": 1.0}},
                  {"en_dev": rows, "cn_dev": rows})
    with open(path) as f:
        written = json.load(f)
    written["group_subtasks"] = {"mmbench": ["mmb_sub"], "mmb_sub": ["en_dev", "cn_dev"], "en_dev": [], "cn_dev": []}
    with open(path, "w") as f:
        json.dump(written, f)
    got = read_results(str(tmp_path), ["mmbench"])
    assert sorted(got.tasks) == ["cn_dev", "en_dev"] and got.tasks["en_dev"].metrics == {"gpt_eval_score": 61.0}
    written["results"].pop("cn_dev")
    with open(path, "w") as f:
        json.dump(written, f)
    with pytest.raises(PadError, match="task cn_dev produced no score"):
        read_results(str(tmp_path), ["mmbench"])
