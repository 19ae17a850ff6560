"""Splitting one rank's stream across its data-loader workers, for both stages: worker w of W takes every W-th
micro-batch from the resume position on, so the loader's round-robin hands the micro-batches back in order.
"""

from __future__ import annotations

from typing import Callable

from torch.utils.data import get_worker_info


def worker_share(start: int, micro_batch: int) -> Callable[[int], bool]:
    """Whether the calling loader worker reads the sample at position q (every sample when not in a worker)."""
    info = get_worker_info()
    worker, workers = (info.id, info.num_workers) if info else (0, 1)

    def wanted(q: int) -> bool:
        return ((q - start) // micro_batch) % workers == worker

    return wanted
