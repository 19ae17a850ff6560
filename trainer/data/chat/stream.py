"""Streaming conversation entries to one data-parallel rank: deterministic, resumable, worker-count independent.

`SftStream` yields, from position `start` of rank `rank`'s own sequence on (endlessly, epoch after epoch),
the built samples of the entries `trainer.data.chat.order` assigns to this rank. Each entry is read from the
JSON by its byte offset (`trainer.data.chat.index`), so a worker holds only the small index. As in
`pad_stream`, DataLoader workers take blocks of `micro_batch` positions (block k -> worker k mod W), so the
batch sequence is the same for any number of workers.
"""

from __future__ import annotations

import itertools
from typing import Callable, Iterator

import numpy as np
from torch.utils.data import IterableDataset

from pad_pipeline.core import storage
from trainer.data.chat.index import ConversationIndex, load_index, read_entry
from trainer.data.chat.order import epoch_order, rank_to_global
from trainer.data.workers import worker_share


class EpochOrders:
    """Epoch orders of the valid entries, computed when first needed (the last one kept)."""

    def __init__(self, index: ConversationIndex, seed: int, shuffle: bool, group: bool, micro: int, world: int):
        self.index, self.seed, self.shuffle, self.group = index, seed, shuffle, group
        self.micro, self.world = micro, world
        self.size = int(index.valid.sum())
        self._epoch, self._order = -1, np.empty(0, dtype=np.int64)

    def entry_at(self, position: int) -> int:
        """The entry id at global position `position`."""
        epoch, offset = divmod(position, self.size)
        if epoch != self._epoch:
            self._order = epoch_order(self.index.valid, self.index.modality_length, epoch, self.seed, self.shuffle,
                                      self.group, self.micro, self.world)
            self._epoch = epoch
        return int(self._order[offset])


def rank_entries(orders: EpochOrders, rank: int, start: int,
                 wanted: Callable[[int], bool] = lambda q: True) -> Iterator[tuple[int, int]]:
    """(rank position, entry id) from rank position `start` on, for the positions `wanted` accepts."""
    for q in itertools.count(start):
        if wanted(q):
            yield q, orders.entry_at(rank_to_global(q, rank, orders.world, orders.micro))


class SftStream(IterableDataset):
    def __init__(self, json_url: str, index_path: str, builder: Callable[[object, int], object], *, rank: int,
                 world: int, seed: int, shuffle: bool, group_by_modality: bool, start: int, micro_batch: int):
        self.json_url, self.index_path, self.builder = json_url, index_path, builder
        self.rank, self.world, self.seed, self.shuffle = rank, world, seed, shuffle
        self.group, self.start, self.micro = group_by_modality, start, micro_batch

    def __iter__(self) -> Iterator[object]:
        wanted = worker_share(self.start, self.micro)
        index = load_index(self.index_path)
        orders = EpochOrders(index, self.seed, self.shuffle, self.group, self.micro, self.world)
        fs, path = storage.filesystem(self.json_url)
        with fs.open(path, "rb") as handle:
            for _, entry_id in rank_entries(orders, self.rank, self.start, wanted):
                yield self.builder(read_entry(handle, index, entry_id), entry_id)
