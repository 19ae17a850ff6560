"""The lmms-eval bridge without lmms-eval: its command line (explicit device map, batch size once), the checks
before starting, and, with a stand-in child process, the exit code, the streamed log and the all-empty check."""

import json
import os
import sys

import pytest

from pad_pipeline.core.errors import PadError
from trainer.eval import lmms
from trainer.eval.lmms import LmmsRequest, check_export, command, model_args, resolve_device, run_lmms_eval


@pytest.fixture
def export(tmp_path) -> str:
    folder = tmp_path / "export-hf"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "chat_template.json").write_text('{"chat_template": "x"}')
    return str(folder)


def test_command_passes_an_explicit_device_map(export, tmp_path):
    req = LmmsRequest(export=export, tasks=["gqa", "mme"], output_path=str(tmp_path / "out"), device="cuda",
                      dtype="bfloat16", limit=5, include_path="tasks")
    args = dict(a.split("=", 1) for a in model_args(req).split(","))
    assert args == {"pretrained": export, "device": "cuda:0", "device_map": "cuda:0", "dtype": "bfloat16"}
    cmd = command(req)
    assert cmd[:3] == [sys.executable, "-m", "lmms_eval"] and "--log_samples" in cmd
    at = {k: cmd[cmd.index(k) + 1] for k in ("--model", "--tasks", "--limit", "--include_path", "--batch_size")}
    assert at == {"--model": "llava_hf", "--tasks": "gqa,mme", "--limit": "5",
                  "--include_path": os.path.abspath("tasks"), "--batch_size": "1"}
    assert model_args(LmmsRequest(export=export, tasks=["x"], output_path="o")).count("device_map=cpu") == 1


def test_refusals_before_starting(export, tmp_path):
    with pytest.raises(PadError, match="no config.json"):
        check_export(str(tmp_path))
    os.remove(os.path.join(export, "chat_template.json"))
    with pytest.raises(PadError, match="no chat template"):
        check_export(export)
    with open(os.path.join(export, "tokenizer_config.json"), "w") as f:
        json.dump({"chat_template": "{{ x }}"}, f)
    check_export(export)  # a template kept in the tokenizer's config is one too
    with pytest.raises(PadError, match="batch size 1"):
        run_lmms_eval(LmmsRequest(export=export, tasks=["gqa"], output_path=str(tmp_path), batch_size=4))
    with pytest.raises(PadError, match="splits --model_args"):
        model_args(LmmsRequest(export="a,b", tasks=["gqa"], output_path="o"))


def _child(monkeypatch, code: str) -> None:
    """Stand in for `python -m lmms_eval` with a script; `OUT` in it is the output folder."""
    monkeypatch.setattr(lmms, "command", lambda req: [sys.executable, "-c", code.replace("OUT", req.output_path)])


WRITE = """
import json, os
os.makedirs("OUT/m", exist_ok=True)
written = {"results": {"t": {"score,none": 0.0}}, "n-samples": {"t": {"effective": 2}}}
json.dump(written, open("OUT/m/d_results.json", "w"))
open("OUT/m/d_samples_t.jsonl", "w").write(ANSWERS)
print("2026 | ERROR | Error boom in generating")
print("Error boom in generating", flush=True)
"""


def test_all_empty_answers_raise_and_count_generate_errors(export, tmp_path, monkeypatch, capfd):
    rows = "".join(json.dumps({"doc_id": i, "filtered_resps": [""]}) + "\n" for i in range(2))
    _child(monkeypatch, WRITE.replace("ANSWERS", repr(rows)))
    with pytest.raises(PadError, match=r"task t: llava_hf returned no text for any of its 2 samples \(2 'Error"):
        run_lmms_eval(LmmsRequest(export=export, tasks=["t"], output_path=str(tmp_path / "out")))
    assert "Error boom in generating" in capfd.readouterr().err  # the child's log streamed to stderr


def test_good_run_returns_scores(export, tmp_path, monkeypatch):
    rows = "".join(json.dumps({"doc_id": i, "filtered_resps": ["", "yes"][i]}) + "\n" for i in range(2))
    _child(monkeypatch, WRITE.replace("ANSWERS", repr(rows)))
    got = run_lmms_eval(LmmsRequest(export=export, tasks=["t"], output_path=str(tmp_path / "out")))
    assert got.tasks["t"].metrics == {"score": 0.0} and got.tasks["t"].n_samples == 2


def test_nonzero_exit_and_silent_failure_raise(export, tmp_path, monkeypatch):
    _child(monkeypatch, "import sys; print('boom: the last line'); sys.exit(3)")
    with pytest.raises(PadError, match="lmms-eval exited 3 on tasks t,u: boom: the last line"):
        run_lmms_eval(LmmsRequest(export=export, tasks=["t", "u"], output_path=str(tmp_path / "out")))
    log = "\\x1b[32m2026-12-05\\x1b[0m | \\x1b[31mERROR   \\x1b[0m | m:f:1 - Tasks were not found: t\\nTraceback"
    _child(monkeypatch, f"print('{log}')")  # what lmms-eval does: logs, exits 0
    with pytest.raises(PadError, match=r"wrote no .*task t .*\(lmms-eval said: Tasks were not found: t\)$"):
        run_lmms_eval(LmmsRequest(export=export, tasks=["t"], output_path=str(tmp_path / "out")))


def test_auto_device_is_the_first_gpu_or_cpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda:0" and resolve_device("cuda:1") == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
