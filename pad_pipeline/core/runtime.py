"""The process runtime, each rule defined once: which device to run on, which Ray to join, CPU thread set-up,
seeding.

The annotation chain, the training loop, `pad analyze` and the tiny random models call these instead
of spelling `torch.cuda.is_available()`, `torch.set_flush_denormal` or `torch.manual_seed` themselves,
so a device named in a manifest means the same thing everywhere and a seed draws the same weights.
`TINY_RANDOM` is the checkpoint name of the tiny random-weight models, on both sides of the product.
torch is imported inside the functions: config modules import `TINY_RANDOM` and must stay torch-free.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Iterator

from pad_pipeline.core.errors import PadError

if TYPE_CHECKING:
    import torch

TINY_RANDOM = "tiny-random"


def use_gpu(requested: bool | None = None) -> bool:
    """Whether to use CUDA: as requested, else whenever a CUDA device is visible."""
    import torch

    return torch.cuda.is_available() if requested is None else requested


def resolve_device(name: str = "auto", field: str = "device") -> torch.device:
    """`auto` -> the first CUDA device Ray (or the user) made visible, else the CPU; any other name as
    given. Asking for CUDA where there is none is a `PadError` naming `field` (not a crash mid-run)."""
    import torch

    if name == "auto":
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PadError(f"field '{field}': {name} requested but no CUDA device is available")
    return device


def ray_address(address: str | None = None) -> str:
    """The `ray.init` address: `address`, else $RAY_ADDRESS (as `ray job submit` sets it), else "local", a new
    instance. Never None: `ray.init(address=None)` joins whatever `ray start` cluster this machine last had
    (someone else's, or a dead one it then waits on)."""
    return address or os.environ.get("RAY_ADDRESS") or "local"


def prepare_cpu_threads(num_threads: int | None = None) -> None:
    """Flush denormals (random-weight models on zero-padded inputs make them, and flushing is ~10x
    faster on CPU); `num_threads`, when given, caps torch's intra-op threads."""
    import torch

    torch.set_flush_denormal(True)
    if num_threads:
        torch.set_num_threads(num_threads)


def set_seed(seed: int) -> None:
    """Seed torch's global generators (CPU and every CUDA device): what weight init and dropout draw."""
    import torch

    torch.manual_seed(seed)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """`set_seed` inside the block only: its random init is reproducible, and the caller's CPU
    generator state is restored afterwards."""
    import torch

    with torch.random.fork_rng(devices=[]):
        set_seed(seed)
        yield
