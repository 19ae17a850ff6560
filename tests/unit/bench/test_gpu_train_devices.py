"""bench/gpu_train.py's assembly on a device other than the CPU: every parameter and buffer follows the towers
(on CUDA a CPU buffer made the first training step fail; `meta` shows the same on a CPU machine)."""

import sys

import torch
from helpers import REPO

sys.path.insert(0, str(REPO / "bench"))
import gpu_train  # noqa: E402

from trainer.models.placement import stray_tensors  # noqa: E402


def test_the_bench_vlm_built_on_a_device_has_no_tensor_elsewhere():
    meta = torch.device("meta")
    vision, llm = (m.to(meta) for m in gpu_train.build_towers(torch.device("cpu"), smoke=True))
    for train_llm in (False, True):
        vlm = gpu_train.assemble(vision, llm, train_llm=train_llm)
        assert stray_tensors(vlm, meta) == []
