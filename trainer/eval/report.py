"""What `pad eval` measured, as one JSON document (`eval.json`), and the mean and spread over seeds.

The document holds, per task, the numbers of every model (row) plus what a reader needs to trust them:
the sources of each model, the settings, how many samples each number covers, metrics that could not be
computed and why. `aggregate(reports)` combines the reports of several seeds of the same evaluation:
every measured number becomes `{"mean", "std", "values"}` (std of the population of seeds, 0 for one seed);
settings (`SETTINGS`, such as REC's IoU threshold) and the rest are taken from the first report.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

Report = dict[str, Any]
SETTINGS = frozenset({"threshold"})  # numbers in a task's part that are chosen, not measured


def spread(values: Sequence[float]) -> dict[str, Any]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return {"mean": mean, "std": std, "values": list(values)}


def _merge(items: Sequence[Any]) -> Any:
    first = items[0]
    if isinstance(first, bool) or not isinstance(first, (int, float, dict)):
        return first
    if isinstance(first, dict):
        keys = [k for k in first if all(isinstance(i, dict) and k in i for i in items)]
        return {k: first[k] if k in SETTINGS else _merge([i[k] for i in items]) for k in keys}
    return spread([float(i) for i in items])


def aggregate(reports: Sequence[Report], seeds: Sequence[int]) -> Report:
    """One report whose numbers are the mean and spread of `reports` (one per seed, same layout)."""
    if not reports:
        raise ValueError("no reports to aggregate")
    merged = {k: (_merge([r[k] for r in reports]) if k in ("captions", "rec", "lmms_eval") else v)
              for k, v in reports[0].items()}
    merged["seeds"] = list(seeds)
    return merged


def value_of(cell: Any) -> float | None:
    """The number a table shows for a cell: the value, or the mean over seeds."""
    if isinstance(cell, dict):
        return float(cell["mean"]) if "mean" in cell else None
    return None if cell is None else float(cell)
