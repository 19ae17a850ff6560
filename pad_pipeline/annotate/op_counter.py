"""A CPU proxy of GPU launch and synchronisation costs: aten ops dispatched, and host syncs, per stage.

On a GPU every aten op that reaches a kernel is (at least) one launch, and every operation whose result the
host must read (a tensor's value, or a size that depends on values) makes the host wait for the device.
`OpCounter` counts both on any device, the CPU included, so the suite and `bench/sync_proxy.py` can
measure what a GPU profile would show without a GPU:

  ops    aten ops dispatched (a `TorchDispatchMode`; views and metadata-only ops are counted too, so
         this is an upper bound of kernel launches).
  syncs  ops after which the host holds a value read from the device: `aten._local_scalar_dense`
         (`.item()`, `bool(t)`, `int(t)`), data-dependent output sizes (`nonzero`, `masked_select`,
         `unique`, boolean-mask indexing, `repeat_interleave` without an output size, torchvision's
         `nms`), and, seen through
         a `TorchFunctionMode`, `.tolist()` and `.cpu()` of a tensor (free on the CPU, a device-to-host
         copy on a GPU). `.numpy()` is not counted (it needs a host tensor: the `.cpu()` before it is),
         nor is `.to(device)` (on the CPU it cannot tell a host read from an upload; PAD reads back with
         `.cpu()` only) or a host-to-device copy (the chain makes them from pinned memory, non-blocking).

Use: `with OpCounter() as c: ...; c.ops, c.syncs, c.sync_ops` (a Counter of names, to find them).
The counts are per thread of the `with` block; nothing else is changed (outputs are the same bits).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

_DATA_DEPENDENT = {aten._local_scalar_dense.default, aten.nonzero.default, aten.masked_select.default,
                   aten.repeat_interleave.Tensor, aten._unique2.default, aten.unique_consecutive.default,
                   aten.unique_dim.default}
try:  # torchvision's NMS: its output size depends on the data (its CUDA kernel copies a mask to the host)
    import torchvision  # noqa: F401  (registers torch.ops.torchvision)

    _DATA_DEPENDENT.add(torch.ops.torchvision.nms.default)
except (ImportError, AttributeError):  # pragma: no cover - torchvision is a PAD dependency
    pass
_HOST_READS = {"tolist", "cpu"}


def _is_sync(func: Any, args: tuple, kwargs: dict) -> bool:
    if func in _DATA_DEPENDENT:
        return not (func is aten.repeat_interleave.Tensor and kwargs.get("output_size") is not None)
    if func is aten.index.Tensor:  # x[bool_mask]: the output size is the mask's count of True
        indices = args[1] if len(args) > 1 else kwargs.get("indices", [])
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices)
    return False


class _Dispatch(TorchDispatchMode):
    def __init__(self, counter: "OpCounter"):
        super().__init__()
        self.counter = counter

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        self.counter.ops += 1
        if _is_sync(func, args, kwargs):
            self.counter.count_sync(str(func.overloadpacket.__name__))
        return func(*args, **kwargs)


class _Function(TorchFunctionMode):
    def __init__(self, counter: "OpCounter"):
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in _HOST_READS and args and isinstance(args[0], torch.Tensor):
            self.counter.count_sync(name)
        return func(*args, **kwargs)


class OpCounter:
    """Counts aten ops and host syncs inside its `with` block; see the module docstring."""

    def __init__(self) -> None:
        self.ops = 0
        self.sync_ops: Counter[str] = Counter()
        self._modes: list[Any] = []

    @property
    def syncs(self) -> int:
        return sum(self.sync_ops.values())

    def count_sync(self, name: str) -> None:
        self.sync_ops[name] += 1

    def __enter__(self) -> "OpCounter":
        self._modes = [_Function(self), _Dispatch(self)]
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc)
        self._modes = []


def count_stages(stages: list[Any], images: list[Any]) -> dict[str, OpCounter]:
    """Run `images` through `stages` (set up; a chain's `Annotator.stages`) as the annotator does, one
    counter per stage: the per-stage figures of the test and of `bench/sync_proxy.py`."""
    batch: dict[str, list[Any]] = {"image": list(images)}
    counters: dict[str, OpCounter] = {}
    with torch.inference_mode():
        for stage in stages:
            with OpCounter() as counter:
                batch = stage(batch)
            counters[stage.name] = counter
    return counters
