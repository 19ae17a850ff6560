"""Putting a model on its device, checked: every parameter and buffer must end up there.

A CPU test cannot see a tensor left on the CPU next to a GPU model (the first GPU step fails with "Expected all
tensors to be on the same device"); `move_to` turns that into an error at assembly time, on any machine.
"""

from __future__ import annotations

import torch
from torch import nn


def stray_tensors(module: nn.Module, device: torch.device) -> list[str]:
    """Names of `module`'s parameters and buffers (persistent or not) that are not on `device`."""
    named = [*module.named_parameters(), *module.named_buffers()]
    return [f"{name} ({t.device})" for name, t in named if t.device != device]


def move_to(module: nn.Module, device: torch.device | str) -> nn.Module:
    """`module` moved to `device`; raises naming the tensors that did not follow."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    module.to(device)
    stray = stray_tensors(module, device)
    if stray:
        raise RuntimeError(f"{type(module).__name__}: not on {device} after moving it: {', '.join(stray[:5])}")
    return module
