"""What only a GPU enforces, enforced on the CPU: for tests of the training loop.

On a GPU the process group is NCCL, which serves CUDA tensors only, and a tensor created without a device
lands on the CPU, away from the model. On the CPU both hide: the group is gloo and the CPU is the model's
device. `nccl_like_collectives(device)` wraps torch.distributed's collectives so that, like NCCL, each refuses a
tensor that is not on `device`, and object collectives called by PAD's code must name their device.
`device_less_tensors_elsewhere()` sends every tensor created without a device to the `meta` device, so
inside it a device-less tensor is off the model's device exactly as it is in a GPU run.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist

TENSOR_COLLECTIVES = ("all_reduce", "broadcast", "reduce", "all_gather", "all_gather_into_tensor",
                      "reduce_scatter", "reduce_scatter_tensor", "all_to_all_single", "all_to_all")


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)


def _called_from_pad() -> bool:
    frame = sys._getframe(2)
    return frame.f_globals.get("__name__", "").startswith(("trainer", "pad_pipeline"))


class CollectiveLog:
    def __init__(self) -> None:
        self.calls: list[str] = []


@contextlib.contextmanager
def nccl_like_collectives(device: torch.device) -> Iterator[CollectiveLog]:
    """Every tensor collective refuses tensors off `device`; PAD's object broadcasts must pass `device=`."""
    log = CollectiveLog()
    saved: dict[str, Callable[..., Any]] = {}

    def tensor_guard(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            for t in _tensors([*args, *kwargs.values()]):
                if t.device != device:
                    raise RuntimeError(f"{name}: No backend type associated with device type {t.device.type} "
                                       f"(this group serves {device})")
            log.calls.append(name)
            return real(*args, **kwargs)
        return guarded

    def object_guard(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if _called_from_pad() and torch.device(kwargs.get("device") or "meta") != device:
                raise RuntimeError(f"{name} called without device={device}")
            log.calls.append(name)
            return real(*args, **kwargs)
        return guarded

    for name in TENSOR_COLLECTIVES:
        saved[name] = getattr(dist, name)
        setattr(dist, name, tensor_guard(name, saved[name]))
    saved["broadcast_object_list"] = dist.broadcast_object_list
    dist.broadcast_object_list = object_guard("broadcast_object_list", saved["broadcast_object_list"])
    try:
        yield log
    finally:
        for name, fn in saved.items():
            setattr(dist, name, fn)


@contextlib.contextmanager
def device_less_tensors_elsewhere() -> Iterator[None]:
    """Tensors created without a device go to `meta` (off the CPU model, as device-less ones are in a GPU run)."""
    with torch.device("meta"):
        yield


def guard_training_steps(loop_module: Any, device: torch.device) -> contextlib.ExitStack:
    """Install both guards for a run of `loop_module.train_worker`: collectives as NCCL checks them for the
    whole run, and each optimizer step (`loop_module._one_step`) with device-less tensors off the device."""
    stack = contextlib.ExitStack()
    log = stack.enter_context(nccl_like_collectives(device))
    step = loop_module._one_step

    def guarded_step(*args: Any, **kwargs: Any) -> Any:
        with device_less_tensors_elsewhere():
            return step(*args, **kwargs)

    loop_module._one_step = guarded_step
    stack.callback(setattr, loop_module, "_one_step", step)
    stack.log = log  # type: ignore[attr-defined]
    return stack
