"""The engine-free pieces of the loop (no DeepSpeed import): step counts, when to save, the resume decision,
metric reduction, the step driver, moving batches."""

import subprocess
import sys

import pytest
import torch

from pad_pipeline.core.errors import PadError
from trainer.config.pretrain import PretrainConfig, resume_identity
from trainer.config.sft import SftConfig
from trainer.training import checkpoint, loop, schedule, stage
from trainer.training.resume import resume_point, resume_state


def _cfg(tmp_path, **train) -> PretrainConfig:
    return PretrainConfig.model_validate({"train": {"output_dir": str(tmp_path / "run"), "global_batch_size": 8,
                                                    "micro_batch_size": 4, **train}})


def _resume(cfg, resume):
    return resume_state(cfg.train.output_dir, resume, resume_identity(cfg))


def _checkpoint(cfg: PretrainConfig, step: int, complete=True) -> str:
    out = cfg.train.output_dir
    partial = checkpoint.prepare_partial(out, step)
    if not complete:
        return partial
    state = {"total_steps": 10, "identity": resume_identity(cfg), "plan": {"num_samples": 80}}
    return checkpoint.commit(out, step, state, keep=5)


def test_stage_schedule_and_resume_do_not_import_deepspeed():
    code = ("import sys, trainer.training.stage, trainer.training.schedule, trainer.training.resume; "
            "print('deepspeed' in sys.modules, 'trainer.training.engine' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(("epochs", "num_samples", "expected"), [(1.0, 80, 10), (2.0, 100, 25), (0.5, 30, 1),
                                                                  (1.0, 3, 1), (1.5, 64, 12)])
def test_total_steps_is_epochs_over_the_data_in_global_batches(tmp_path, epochs, num_samples, expected):
    assert schedule.total_steps(_cfg(tmp_path, epochs=epochs).train, num_samples) == expected


def test_max_steps_overrides_epochs(tmp_path):
    assert schedule.total_steps(_cfg(tmp_path, max_steps=7, epochs=100.0).train, 10_000) == 7


def test_should_save_every_n_steps_and_at_the_end():
    assert [d for d in range(1, 11) if schedule.should_save(d, 10, 3)] == [3, 6, 9, 10]
    assert [d for d in range(1, 5) if schedule.should_save(d, 4, 500)] == [4]


def test_fresh_run_in_an_empty_folder_starts_from_nothing(tmp_path):
    assert _resume(_cfg(tmp_path), False) == (None, None)
    assert _resume(_cfg(tmp_path), "auto") == (None, None)


def test_fresh_run_refuses_a_folder_that_holds_checkpoints(tmp_path):
    cfg = _cfg(tmp_path)
    _checkpoint(cfg, 4)
    with pytest.raises(PadError, match=r"holds checkpoints \(step-00000004\).*--resume"):
        _resume(cfg, False)


def test_both_stages_refuse_with_the_one_resume_check(tmp_path, monkeypatch):
    from trainer.training import driver

    cfg = _cfg(tmp_path)
    _checkpoint(cfg, 4)
    with pytest.raises(PadError) as direct:
        resume_point(cfg.train.output_dir, False)
    monkeypatch.setattr("trainer.training.driver.load_sft_config", lambda *a: SftConfig.model_validate(
        {"data": {"path": "c.json", "image_folder": "i", "template": "vicuna_v1"},
         "train": {"output_dir": cfg.train.output_dir}}))
    with pytest.raises(PadError) as sft:
        driver.run_sft("m.yaml", [])
    assert str(sft.value) == str(direct.value)
    assert resume_point(cfg.train.output_dir, True) == checkpoint.latest_checkpoint(cfg.train.output_dir)


def test_resume_without_a_complete_checkpoint_is_an_error(tmp_path):
    cfg = _cfg(tmp_path)
    _checkpoint(cfg, 4, complete=False)  # a crash mid-save: only a .partial folder
    with pytest.raises(PadError, match="no complete checkpoint"):
        _resume(cfg, True)
    assert _resume(cfg, "auto") == (None, None)


@pytest.mark.parametrize("resume", [True, "auto"])
def test_resume_picks_the_newest_complete_checkpoint_and_its_state(tmp_path, resume):
    cfg = _cfg(tmp_path)
    _checkpoint(cfg, 2)
    newest = _checkpoint(cfg, 6)
    _checkpoint(cfg, 8, complete=False)
    path, state = _resume(cfg, resume)
    assert path == newest and state["step"] == 6 and state["plan"]["num_samples"] == 80


def test_resume_refuses_a_checkpoint_of_a_changed_manifest_naming_the_fields(tmp_path):
    _checkpoint(_cfg(tmp_path, lr=1e-3, beta_max=5.0), 3)
    with pytest.raises(PadError, match=r"changed train\.beta_max, train\.lr since"):
        _resume(_cfg(tmp_path, lr=2e-3, beta_max=1.0, save_every=7), True)
    assert _resume(_cfg(tmp_path, lr=1e-3, beta_max=5.0, save_every=7), True)[1]["step"] == 3


def test_sft_resume_identity_covers_the_data_and_template(tmp_path):
    from trainer.config.sft import sft_resume_identity

    base = {"data": {"path": "c.json", "image_folder": "img"}, "train": {"output_dir": str(tmp_path)}}
    a = sft_resume_identity(SftConfig.model_validate(base))
    b = sft_resume_identity(SftConfig.model_validate({**base, "data": {**base["data"], "template": "llama3"}}))
    assert a["data.template"] == "vicuna_v1" and b["data.template"] == "llama3"
    assert {k for k in a if a[k] != b[k]} == {"data.template"}


def test_step_metrics_average_named_keys_by_their_counts_and_keep_counters():
    sums = {"loss": 6.0, "loss_batches": 4.0, "samples": 30.0, "patch": 1.0, "none": 0.0}
    assert stage.step_metrics(sums, {"loss": "loss_batches", "patch": "none"}) == {"loss": 1.5, "samples": 30.0,
                                                                                   "patch": 0.0}


def test_run_steps_runs_the_remaining_steps_in_order_and_returns_the_last_row():
    seen = []
    last = loop.run_steps(3, 6, lambda s: {"step": s}, lambda done, row: seen.append((done, row["step"])))
    assert seen == [(4, 3), (5, 4), (6, 5)] and last == {"step": 5}
    assert loop.run_steps(6, 6, lambda s: {"x": 1}, lambda d, r: None) == {}


def test_to_device_moves_every_tensor_and_keeps_other_values():
    batch = {"pixels": torch.zeros(2, 3, 4, 4, dtype=torch.uint8), "input_ids": torch.ones(2, 5, dtype=torch.long),
             "regions": torch.tensor(3), "bad": ["kept as is"]}
    out = loop.to_device(batch, torch.device("meta"))
    assert out["bad"] is batch["bad"]
    assert all(v.device.type == "meta" and v.dtype == batch[k].dtype and v.shape == batch[k].shape
               for k, v in out.items() if k != "bad")


def test_stages_are_registered_by_name():
    assert stage.STAGES.names() == ("pretrain", "sft")
