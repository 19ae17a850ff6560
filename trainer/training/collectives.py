"""The training loop's collectives, each on the device its process group serves.

NCCL serves CUDA tensors only ("No backend type associated with device type cpu"), gloo CPU tensors; so
every tensor PAD hands to a collective is created on the rank's device (the engine's), and object broadcasts
and barriers name that device, as torch asks (`broadcast_object_list(device=)`, `barrier(device_ids=)`).
The loop calls these three and no `torch.distributed` collective directly.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.distributed as dist


def all_reduce_sum(values: Sequence[float], device: torch.device) -> list[float]:
    """`values` summed over all ranks (float64, one collective on `device`)."""
    reduced = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(reduced)
    return reduced.tolist()


def broadcast_object(obj: Any, device: torch.device) -> Any:
    """Rank 0's `obj` on every rank (pickled through a tensor on `device`)."""
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=device)
    return box[0]


def barrier(device: torch.device) -> None:
    """Wait for every rank; on an accelerator the barrier's tensor lives on this rank's device."""
    if device.type == "cpu":
        dist.barrier()
    else:
        dist.barrier(device_ids=[device.index if device.index is not None else torch.cuda.current_device()])
