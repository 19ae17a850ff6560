"""Device choice, CPU thread set-up and seeding: one rule each, and a module that imports no torch."""

import subprocess
import sys

import pytest
import torch

from pad_pipeline.core import runtime
from pad_pipeline.core.errors import PadError


def test_auto_is_the_first_cuda_device_else_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.resolve_device("auto") == torch.device("cpu") and not runtime.use_gpu()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.resolve_device("auto") == torch.device("cuda", 0) and runtime.use_gpu()
    assert runtime.resolve_device("cuda:1") == torch.device("cuda", 1)
    assert runtime.use_gpu(False) is False


def test_explicit_cuda_without_a_gpu_is_an_error_naming_the_field(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(PadError, match="field 'models.device': cuda requested but no CUDA device"):
        runtime.resolve_device("cuda", "models.device")
    assert runtime.use_gpu(True) is True  # an explicit request is kept (the engine fails loudly later)


def test_prepare_cpu_threads_flushes_denormals_and_caps_threads():
    threads = torch.get_num_threads()
    try:
        runtime.prepare_cpu_threads(1)
        assert torch.get_num_threads() == 1
        if torch.set_flush_denormal(True):  # False where the CPU cannot flush (then nothing to check)
            assert torch.tensor([1e-42], dtype=torch.float32).item() == 0.0
    finally:
        torch.set_num_threads(threads)


def test_set_seed_and_seeded_draw_the_same_numbers_and_seeded_restores_the_caller():
    runtime.set_seed(3)
    first = torch.rand(4)
    runtime.set_seed(3)
    assert torch.equal(torch.rand(4), first)
    state = torch.random.get_rng_state()
    with runtime.seeded(3):
        assert torch.equal(torch.rand(4), first)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_importing_runtime_does_not_import_torch():
    code = ("import sys; from pad_pipeline.core.runtime import TINY_RANDOM; "
            "assert TINY_RANDOM == 'tiny-random' and 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ray_address_is_the_given_one_then_ray_address_then_a_new_local_instance(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert runtime.ray_address() == "local" and runtime.ray_address(None) == "local"  # never None: that joins
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert runtime.ray_address() == "10.0.0.1:6379" and runtime.ray_address("auto") == "auto"
