"""Counting forward (and backward) FLOPs of PAD's models: the counter that bench/flops.py and bench/gpu.py share.

FLOPs are counted as `torch.utils.flop_counter.FlopCounterMode` does: 2 per multiply-accumulate of matmuls,
convolutions and attention (SDPA is forced to the math backend, whose bmm's are counted); element-wise ops
(norms, softmax, activations, resizes) are not counted. Grounding DINO's multi-scale deformable attention
samples its values with `grid_sample`, which FlopCounterMode does not count: it is estimated analytically
(10 FLOPs per sampled point per channel: bilinear 4 x MAC + weighted sum 1 x MAC) by a forward hook on every
`MultiScaleDeformableAttention` module (Grounding DINO's and MM Grounding DINO's) and kept apart.

`Env` says where tensors live: a `FakeTensorMode` (shapes only: no memory, no arithmetic; bench/flops.py's
default), real CPU tensors, or real tensors on a device (bench/gpu.py counts its own models' real work).
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterator
from unittest import mock

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode, flop_registry, sdpa_flop_count
from transformers.models.grounding_dino import modeling_grounding_dino as gdino_module
from transformers.models.mm_grounding_dino import modeling_mm_grounding_dino as mm_gdino_module


def _cpu_flash_sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


# FlopCounterMode has no formula for the CPU fused SDPA op; SDPA is forced to the math backend below (which
# decomposes into counted bmm's), this mapping is only a safety net should the fused CPU kernel be picked.
CUSTOM_FLOPS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_sdpa_flop}
# Compute ops that FlopCounterMode does not count; seen ones are listed under the table.
NOTABLE_UNCOUNTED = ("grid_sampler", "upsample", "scaled_dot_product", "einsum", "_flash", "_efficient")


class OpLog(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the aten ops a forward runs (to list compute ops FlopCounterMode leaves out)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


@dataclass
class Count:
    name: str
    total: float  # FLOPs counted by FlopCounterMode
    parts: dict[str, float]  # breakdown (sums to total)
    extra: float = 0.0  # analytic estimate of uncounted ops (deformable sampling)
    extra_note: str = ""
    uncounted_ops: list[str] = field(default_factory=list)

    @property
    def flops(self) -> float:
        return self.total + self.extra


def breakdown(counts: dict[str, dict], total: float, groups: list[tuple[str, tuple[str, ...]]]
              ) -> dict[str, float]:
    """Module-name prefixes -> FLOPs; whatever no group claims goes to 'other'."""
    parts: dict[str, float] = {}
    for label, prefixes in groups:
        parts[label] = float(sum(sum(counts[k].values()) for k in counts if any(k == p for p in prefixes)))
    parts["other (outside the listed modules)"] = total - sum(parts.values())
    return parts


def run_counted(forward: Callable[[], object], mode: contextlib.AbstractContextManager, grad: bool = False
                ) -> tuple[float, dict[str, dict], list[str]]:
    """FLOPs of `forward()` (backward too when it calls it, with `grad`), per-module counts, uncounted ops."""
    oplog = OpLog()
    with mode, contextlib.nullcontext() if grad else torch.no_grad(), sdpa_kernel(SDPBackend.MATH), \
            FlopCounterMode(display=False, custom_mapping=CUSTOM_FLOPS) as counter, oplog:
        forward()
    counted = {str(k) for k in flop_registry} | {str(k) for k in CUSTOM_FLOPS}
    uncounted = sorted(op for op in oplog.ops if op not in counted and any(s in op for s in NOTABLE_UNCOUNTED))
    return float(counter.get_total_flops()), counter.get_flop_counts(), uncounted


@contextlib.contextmanager
def deformable_sampling(models: list[nn.Module]) -> Iterator[dict[str, float]]:
    """Analytic grid_sample FLOPs of every deformable-attention module of `models`, by encoder/decoder."""
    sampled = {"encoder": 0.0, "decoder": 0.0}

    def hook(where: str):
        def count(module, args, output):
            value, locations = args[0], args[4]
            batch, queries, heads, levels, points, _ = locations.shape
            sampled[where] += 10.0 * batch * queries * heads * levels * points * value.shape[-1]
        return count

    handles = [module.register_forward_hook(hook("encoder" if ".encoder." in name else "decoder"))
               for model in models for name, module in model.named_modules()
               if type(module).__name__ == "MultiScaleDeformableAttention"]
    try:
        yield sampled
    finally:
        for handle in handles:
            handle.remove()


def count_call(fn: Callable[[], object], models: list[nn.Module], env: "Env", grad: bool = False) -> float:
    """All FLOPs of `fn()` (counted + deformable sampling) on `env`'s tensors: bench/gpu.py's workloads."""
    with deformable_sampling(models) as sampled:
        total, _, _ = run_counted(fn, env.mode(), grad=grad)
    return total + sampled["encoder"] + sampled["decoder"]


class Env:
    """Where models and inputs live: a FakeTensorMode (default), real CPU tensors, or real tensors on `device`."""

    def __init__(self, real: bool, device: torch.device | None = None):
        self.real, self.device = real or device is not None, device
        if self.real:
            torch.set_flush_denormal(True)
            self.fake = None
        else:
            from torch._subclasses.fake_tensor import FakeTensorMode
            # Parameter construction peeks at fake storages' data pointers (harmless, shapes only).
            warnings.filterwarnings("ignore", message="Accessing the data pointer of FakeTensor")
            self.fake = FakeTensorMode(allow_non_fake_inputs=True)

    @contextlib.contextmanager
    def mode(self) -> Iterator[None]:
        if self.fake is None:
            with torch.device(self.device) if self.device is not None else contextlib.nullcontext():
                yield
            return
        # transformers' Grounding DINOs assert a shape check with a tensor comparison (`bool(t == n)`),
        # which needs real data; under fake tensors the check is skipped (it holds by construction).
        with self.fake, mock.patch.object(gdino_module, "torch_compilable_check", lambda *a, **k: None), \
                mock.patch.object(mm_gdino_module, "torch_compilable_check", lambda *a, **k: None):
            yield

    def build(self, ctor: Callable[[], nn.Module], real_weights: bool = False) -> nn.Module:
        """`real_weights`: random CPU weights even in fake mode (the forward still runs on fake tensors)."""
        with contextlib.nullcontext() if real_weights else self.mode():
            model = ctor()
        return model.eval().requires_grad_(False)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
