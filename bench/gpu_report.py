"""bench/gpu.py's table: one `Row` per measurement, printed as markdown and written as JSON.

A row's `rate` is images/s (annotation), samples/s (training) or TFLOP/s (the matmul peak); `stage_ms` is
milliseconds per image of each chain stage; `tflops` the achieved TFLOP/s of counted FLOPs; `pct_peak` that
against the measured bf16 matmul peak (MFU). The JSON holds the rows, the machine, the library versions and
the seconds each section took.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import transformers

STAGES = ("tag", "detect", "nms", "segment", "encode")


@dataclass
class Row:
    section: str
    run: str
    batch: int | None = None
    rate: float | None = None
    unit: str = ""
    stage_ms: dict[str, float] = field(default_factory=dict)
    peak_gib: float | None = None
    tflops: float | None = None
    pct_peak: float | None = None
    note: str = ""


def _num(x: float | None, digits: int = 1) -> str:
    """`digits` decimals, or 3 significant digits for small values (tiny smoke-run figures stay readable)."""
    if x is None:
        return ""
    return f"{x:.3g}" if abs(x) < 10 ** -digits * 100 else f"{x:.{digits}f}"


def markdown(rows: list[Row]) -> str:
    head = ("| section | run | batch | throughput | ms/img tag / detect / nms / segment / encode | peak GiB | "
            "TFLOP/s | % of peak | note |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        stages = " / ".join(_num(r.stage_ms.get(s)) for s in STAGES) if r.stage_ms else ""
        rate = f"{_num(r.rate, 2)} {r.unit}".strip()
        lines.append(f"| {r.section} | {r.run} | {r.batch or ''} | {rate} | {stages} | {_num(r.peak_gib)} | "
                     f"{_num(r.tflops)} | {_num(r.pct_peak)} | {r.note} |")
    return "\n".join(lines)


def machine(device: torch.device) -> dict[str, str]:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    return {"device": name, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "cuda": str(torch.version.cuda)}


def write_report(rows: list[Row], out: Path, device: torch.device, started: float, seconds: dict[str, float],
                 imported: list[str]) -> None:
    table = markdown(rows)
    info = machine(device)
    print(f"\n## PAD on {info['device']} ({time.strftime('%Y-%m-%d', time.localtime(started))}; torch "
          f"{info['torch']}, transformers {info['transformers']})\n\n{table}\n", flush=True)
    data = {"date": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)), "machine": info,
            "rows": [asdict(r) for r in rows], "section_seconds": seconds, "absent_modules_imported": imported,
            "markdown": table}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1))
    print(f"[gpu.py] wrote {out}", flush=True)
