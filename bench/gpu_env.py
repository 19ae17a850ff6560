"""What bench/gpu.py needs before it imports PAD: carried wheels on sys.path, and a budget per section.

The GPU image has torch, transformers, numpy, pillow, pyyaml, fsspec, pyarrow, safetensors, tokenizers, scipy
and matplotlib, but not pydantic (PAD's config classes), pycocotools (PAD's RLE codec) or DeepSpeed and hjson
(PAD's training engine), and no package index. `bench/gpu_wheels.sh` downloads their cp312 manylinux x86-64
wheels into `.whl/` (ignored by git; a few MiB). `add_carried_wheels()` unpacks them into a temporary folder
and puts it first on sys.path, only when one of `NEEDED` cannot be imported (so a development venv is left as
it is). It imports nothing heavy: it runs before torch, so a carried typing_extensions is the one everything
imports.

`Budget` gives each section a cap (SIGALRM raises `SectionTimeout` inside it) and the whole run a deadline,
and records the seconds each section took.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import signal
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[1]
WHEELS = REPO / ".whl"
NEEDED = ("pydantic", "pydantic_core", "annotated_types", "typing_inspection", "pycocotools", "deepspeed", "hjson")
# Never imported on the bench's path (absent from the GPU image, not carried).
ABSENT = ("ray", "webdataset")


def missing_modules(names: tuple[str, ...] | None = None) -> list[str]:
    return [n for n in (NEEDED if names is None else names) if importlib.util.find_spec(n) is None]


def unpack_wheels(folder: Path, into: Path | None = None) -> Path | None:
    """Every `*.whl` of `folder` unpacked (a wheel is a zip of its installed files) into one folder, once."""
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        return None
    key = hashlib.sha256("\n".join(w.name for w in wheels).encode()).hexdigest()[:12]
    target = into or Path(tempfile.gettempdir()) / f"pad-bench-wheels-{key}"
    done = target / ".unpacked"
    if not done.exists():
        target.mkdir(parents=True, exist_ok=True)
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as zf:
                zf.extractall(target)
        done.write_text("\n".join(w.name for w in wheels))
    return target


def add_carried_wheels(folder: Path = WHEELS) -> list[str]:
    """Put the carried wheels on sys.path when a needed module is missing; returns the ones still missing."""
    missing = missing_modules()
    if not missing:
        return []
    site = unpack_wheels(folder)
    if site is not None and str(site) not in sys.path:
        sys.path.insert(0, str(site))
        importlib.invalidate_caches()
    return missing_modules()


class SectionTimeout(Exception):
    """A section ran past its cap."""


@dataclass
class Budget:
    """A deadline for the whole run and a cap per section; `seconds` records what each section took."""

    total_s: float
    start: float = field(default_factory=time.perf_counter)
    seconds: dict[str, float] = field(default_factory=dict)

    def left(self) -> float:
        return self.total_s - (time.perf_counter() - self.start)

    @contextlib.contextmanager
    def section(self, name: str, cap_s: float) -> Iterator[float]:
        """Run a section for at most min(cap_s, time left); SectionTimeout is raised inside it past that."""
        allowed = max(1.0, min(cap_s, self.left()))

        def expire(signum, frame):
            raise SectionTimeout(f"{name}: over its {allowed:.0f} s cap")

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, allowed)
        t0, cpu0 = time.perf_counter(), time.process_time()
        try:
            yield allowed
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            self.seconds[name] = round(time.perf_counter() - t0, 1)
            print(f"[gpu.py] {name}: {self.seconds[name]:.1f} s, {time.process_time() - cpu0:.1f} s CPU (cap "
                  f"{allowed:.0f} s; {self.left():.0f} s of the run's {self.total_s:.0f} s left)", flush=True)
