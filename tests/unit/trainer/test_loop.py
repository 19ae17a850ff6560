"""The DeepSpeed-free pieces of the stage-1 loop: the run's step count, the resume decision, the helpers
around the process group. (Importing `trainer.loop` imports `trainer.engine`, hence DeepSpeed's module,
but nothing here starts an engine.)"""

import os

import pytest
import torch
import torch.distributed as dist

from pad_pipeline.core.errors import PadError
from trainer import checkpoint, loop
from trainer.config import PretrainConfig, resume_identity


def _cfg(tmp_path, **train) -> PretrainConfig:
    return PretrainConfig.model_validate({"train": {"output_dir": str(tmp_path / "run"), "global_batch_size": 8,
                                                    "micro_batch_size": 4, **train}})


def _checkpoint(cfg: PretrainConfig, step: int, identity=None, complete=True) -> str:
    out = cfg.train.output_dir
    partial = checkpoint.prepare_partial(out, step)
    if not complete:
        return partial
    state = {"total_steps": 10, "identity": resume_identity(cfg) if identity is None else identity,
             "shards": [], "num_samples": 80}
    return checkpoint.commit(out, step, state, keep=5)


@pytest.mark.parametrize(("epochs", "num_samples", "expected"), [(1.0, 80, 10), (2.0, 100, 25), (0.5, 30, 1),
                                                                  (1.0, 3, 1), (1.5, 64, 12)])
def test_total_steps_is_epochs_over_the_build_in_global_batches(tmp_path, epochs, num_samples, expected):
    assert loop.total_steps(_cfg(tmp_path, epochs=epochs), num_samples) == expected


def test_max_steps_overrides_epochs(tmp_path):
    assert loop.total_steps(_cfg(tmp_path, max_steps=7, epochs=100.0), 10_000) == 7


def test_fresh_run_in_an_empty_folder_starts_from_nothing(tmp_path):
    assert loop._resume_state(_cfg(tmp_path), False) == (None, None)
    assert loop._resume_state(_cfg(tmp_path), "auto") == (None, None)


def test_fresh_run_refuses_a_folder_that_holds_checkpoints(tmp_path):
    cfg = _cfg(tmp_path)
    _checkpoint(cfg, 4)
    with pytest.raises(PadError, match=r"holds checkpoints \(step-00000004\).*--resume"):
        loop._resume_state(cfg, False)


def test_resume_without_a_complete_checkpoint_is_an_error(tmp_path):
    cfg = _cfg(tmp_path)
    _checkpoint(cfg, 4, complete=False)  # a crash mid-save: only a .partial folder
    with pytest.raises(PadError, match="no complete checkpoint"):
        loop._resume_state(cfg, True)
    assert loop._resume_state(cfg, "auto") == (None, None)  # a partial save does not count as a checkpoint


@pytest.mark.parametrize("resume", [True, "auto"])
def test_resume_picks_the_newest_complete_checkpoint_and_its_state(tmp_path, resume):
    cfg = _cfg(tmp_path)
    _checkpoint(cfg, 2)
    newest = _checkpoint(cfg, 6)
    _checkpoint(cfg, 8, complete=False)
    path, state = loop._resume_state(cfg, resume)
    assert path == newest
    assert state["step"] == 6 and state["num_samples"] == 80


def test_resume_refuses_a_checkpoint_of_a_changed_manifest_naming_the_fields(tmp_path):
    old = _cfg(tmp_path, lr=1e-3, beta_max=5.0)
    _checkpoint(old, 3)
    new = _cfg(tmp_path, lr=2e-3, beta_max=1.0, save_every=7)  # save_every may change, the others may not
    with pytest.raises(PadError, match=r"changed train\.beta_max, train\.lr since"):
        loop._resume_state(new, True)
    assert loop._resume_state(_cfg(tmp_path, lr=1e-3, beta_max=5.0, save_every=7), True)[1]["step"] == 3


def test_to_device_moves_every_tensor_and_keeps_keys_and_dtypes():
    batch = {"pixels": torch.zeros(2, 3, 4, 4, dtype=torch.uint8), "input_ids": torch.ones(2, 5, dtype=torch.long),
             "regions": torch.tensor(3)}
    out = loop._to_device(batch, torch.device("meta"))
    assert set(out) == set(batch)
    assert all(v.device.type == "meta" and v.dtype == batch[k].dtype and v.shape == batch[k].shape
               for k, v in out.items())


def test_broadcast_returns_rank_zeros_object(tmp_path):
    if dist.is_initialized():
        pytest.skip("a process group is already running in this test process")
    store = dist.FileStore(os.path.join(tmp_path, "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        shards = [{"name": "pad-000000", "num_samples": 3}]
        assert loop._broadcast(("latest", shards)) == ("latest", shards)
        assert loop._broadcast(None) is None
    finally:
        dist.destroy_process_group()
