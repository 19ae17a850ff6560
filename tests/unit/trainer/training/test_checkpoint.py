"""A checkpoint is complete or invisible: a crash mid-save never looks like a finished checkpoint."""

import os

import pytest

from trainer.training import checkpoint


def _save(out, step, keep=2, crash_before_commit=False):
    partial = checkpoint.prepare_partial(out, step)
    with open(os.path.join(partial, "weights.bin"), "wb") as f:
        f.write(b"x" * 10)
    if crash_before_commit:
        return partial
    return checkpoint.commit(out, step, {"samples_per_rank": step * 4}, keep)


def test_commit_makes_a_checkpoint_visible_with_its_state(tmp_path):
    out = str(tmp_path)
    assert checkpoint.latest_checkpoint(out) is None
    path = _save(out, 3)
    assert checkpoint.latest_checkpoint(out) == path
    assert checkpoint.read_state(path) == {"samples_per_rank": 12, "step": 3}
    with open(os.path.join(checkpoint.checkpoints_dir(out), "latest")) as f:
        assert f.read().strip() == "step-00000003"


def test_crash_mid_save_leaves_previous_checkpoint_as_latest(tmp_path, monkeypatch):
    out = str(tmp_path)
    good = _save(out, 3)
    _save(out, 6, crash_before_commit=True)           # killed while ranks were writing
    assert checkpoint.latest_checkpoint(out) == good

    def crash(*args, **kwargs):                      # killed between state file and rename
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(KeyboardInterrupt):
        _save(out, 6)
    monkeypatch.undo()
    assert checkpoint.latest_checkpoint(out) == good
    assert os.path.isdir(checkpoint.partial_dir(out, 6))
    # The next save of that step replaces the stale partial folder.
    _save(out, 6)
    assert os.path.basename(checkpoint.latest_checkpoint(out)) == "step-00000006"
    assert not os.path.exists(checkpoint.partial_dir(out, 6))


def test_keeps_only_the_newest(tmp_path):
    out = str(tmp_path)
    for step in (2, 4, 6):
        _save(out, step, keep=2)
    assert [os.path.basename(p) for p in checkpoint.complete_checkpoints(out)] == ["step-00000004", "step-00000006"]
