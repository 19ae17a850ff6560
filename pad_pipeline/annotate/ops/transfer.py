"""Host-to-device copies that do not make the host wait: pinned staging memory, non-blocking copy.

A copy from ordinary (pageable) host memory to a GPU is synchronous: the host waits until the device
has taken the bytes. From pinned (page-locked) memory, `non_blocking=True` only enqueues the copy, so
the host goes on preparing the next batch while the device works. On the CPU both are plain no-ops of
the same code path.
"""

from __future__ import annotations

import torch


def to_device(host: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`host` (a CPU tensor) on `device`: staged in pinned memory and copied without blocking on CUDA."""
    if device.type != "cuda":
        return host.to(device)
    return host.pin_memory().to(device, non_blocking=True)
