"""RunLog: one metrics.jsonl line per step, resumed runs drop what came after the checkpoint, TensorBoard optional."""

import json
import os
from types import SimpleNamespace

import pytest

from trainer.training import run_log
from trainer.training.run_log import RunLog, truncate_metrics


def _metrics(step: int) -> dict:
    return {"caption_loss": 2.0 / step, "patch_loss": 0.5, "beta": 0.1 * step, "loss": 1.0, "lr": 1e-3,
            "grad_norm": 0.3, "regions": 7, "skipped_regions": 1}


def _lines(path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f]


def _write_lines(path, steps) -> None:
    with open(path, "w") as f:
        for s in steps:
            f.write(json.dumps({"step": s, **_metrics(s)}) + "\n")


@pytest.fixture
def clock(monkeypatch):
    """A fake perf_counter that advances 2 s per call."""
    ticks = iter(range(0, 10_000, 2))
    monkeypatch.setattr(run_log, "time", SimpleNamespace(perf_counter=lambda: float(next(ticks))))


def test_one_line_per_step_with_the_metrics_and_throughput(tmp_path, clock):
    log = RunLog(str(tmp_path), total_steps=3, start_step=0, samples_per_step=8, tensorboard=False, progress=False)
    rows = [log.log(s, _metrics(s)) for s in (1, 2, 3)]
    log.close()
    lines = _lines(tmp_path / "metrics.jsonl")
    assert lines == rows
    assert [line["step"] for line in lines] == [1, 2, 3]
    assert lines[1] == {"step": 2, **_metrics(2), "samples_per_s": pytest.approx(8 / 2.0)}
    assert not (tmp_path / "tensorboard").exists()


def test_lines_are_on_disk_after_each_step_before_close(tmp_path):
    log = RunLog(str(tmp_path), 2, 0, 4, tensorboard=False, progress=False)
    log.log(1, _metrics(1))
    assert [line["step"] for line in _lines(tmp_path / "metrics.jsonl")] == [1]  # flushed, a crash keeps it
    log.close()


def test_resumed_run_drops_lines_past_the_checkpoint_then_appends(tmp_path):
    path = tmp_path / "metrics.jsonl"
    _write_lines(path, [1, 2, 3, 4, 5])  # the run died after logging step 5; the checkpoint is step 3
    log = RunLog(str(tmp_path), 6, start_step=3, samples_per_step=4, tensorboard=False, progress=False)
    log.log(4, _metrics(4))
    log.close()
    lines = _lines(path)
    assert [line["step"] for line in lines] == [1, 2, 3, 4]
    assert lines[0] == {"step": 1, **_metrics(1)}  # kept lines are unchanged
    assert "samples_per_s" in lines[3]


def test_a_fresh_run_in_a_used_folder_starts_an_empty_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    _write_lines(path, [1, 2])
    RunLog(str(tmp_path), 2, start_step=0, samples_per_step=4, tensorboard=False, progress=False).close()
    assert path.read_text() == ""


def test_truncate_keeps_steps_up_to_last_and_skips_blank_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    _write_lines(path, [1, 2, 3])
    with open(path, "a") as f:
        f.write("\n")
    truncate_metrics(str(path), 2)
    assert [line["step"] for line in _lines(path)] == [1, 2]
    assert os.listdir(tmp_path) == ["metrics.jsonl"]  # the rewrite left no temporary file


def test_truncate_of_a_missing_file_does_nothing(tmp_path):
    truncate_metrics(str(tmp_path / "metrics.jsonl"), 3)
    assert os.listdir(tmp_path) == []


def test_tensorboard_gets_the_numeric_scalars_under_train(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = RunLog(str(tmp_path), 2, 0, 4, tensorboard=True, progress=False)
    log.log(1, {**_metrics(1), "note": "text is not a scalar"})
    log.log(2, _metrics(2))
    log.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/caption_loss", "train/patch_loss", "train/beta", "train/lr", "train/samples_per_s"} <= tags
    assert "train/step" not in tags and "train/note" not in tags
    caption = events.Scalars("train/caption_loss")
    assert [e.step for e in caption] == [1, 2]
    assert [e.value for e in caption] == pytest.approx([2.0, 1.0])


def test_progress_bar_counts_samples(tmp_path):
    log = RunLog(str(tmp_path), total_steps=5, start_step=2, samples_per_step=8, tensorboard=False, progress=True)
    assert log.bar.total == 40 and log.bar.n == 16
    log.log(3, _metrics(3))
    assert log.bar.n == 24
    log.close()


def test_a_line_torn_by_a_crash_is_dropped_on_resume(tmp_path, capsys):
    path = tmp_path / "metrics.jsonl"
    _write_lines(path, [1, 2, 3])
    with open(path, "a") as f:
        f.write('{"step": 4, "caption_lo')  # the process died mid-write
    log = RunLog(str(tmp_path), 6, start_step=3, samples_per_step=4, tensorboard=False, progress=False)
    log.log(4, _metrics(4))
    log.close()
    assert [line["step"] for line in _lines(path)] == [1, 2, 3, 4]
    assert "dropped 1 unreadable line" in capsys.readouterr().err


def test_tokens_per_second_when_a_step_counts_tokens(tmp_path, clock):
    log = RunLog(str(tmp_path), 2, 0, 8, tensorboard=False, progress=True, desc="sft", postfix=("loss",))
    row = log.log(1, {"loss": 1.25, "tokens": 1000})
    assert row["tokens_per_s"] == pytest.approx(500.0) and row["samples_per_s"] == pytest.approx(4.0)
    assert log.bar.desc == "sft" and log.bar.postfix == "loss=1.250"
    log.close()
