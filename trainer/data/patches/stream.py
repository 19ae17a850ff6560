"""Streaming PAD shards to one data-parallel rank: deterministic, resumable, worker-count independent.

The shard list is frozen at the start of a run (committed shards only, with their sample counts from
the shard records) and stored in checkpoints. Each rank's stream is an endless sequence of epochs:
epoch e permutes the shards with seed (seed, e) and rank r takes every world-th shard of it; samples
inside a shard are permuted with seed (seed, e, shard). A position in that sequence is all a
checkpoint needs (`start`): whole shards before it are skipped without being read.

DataLoader workers split the sequence in blocks of `micro_batch` positions (block k -> worker
k mod W); the DataLoader's round-robin over workers then returns the blocks in order, so the batch
sequence is the same for any number of workers. Each worker reads the shards it has items in (tar
bytes, one shard in memory at a time) and decodes only its own samples.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
from torch.utils.data import IterableDataset

from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.reader import committed_records, iter_tar_samples
from pad_pipeline.dataset.records import Sample
from trainer.data.workers import worker_share


@dataclass(frozen=True)
class ShardInfo:
    url: str
    num_samples: int


def list_shards(path: str) -> list[ShardInfo]:
    """The committed, non-empty shards of the PAD build at `path`, in shard order."""
    records = committed_records(path)
    shards = [ShardInfo(storage.join(path, r.tar), r.num_samples)
              for _, r in sorted(records.items()) if r.num_samples > 0]
    if not shards:
        raise PadError(f"{path}: no committed shard with samples (is it a PAD build? run `pad status {path}`)")
    return shards


def rank_shard_order(num_shards: int, epoch: int, rank: int, world: int, seed: int, shuffle: bool) -> list[int]:
    """Indices of the shards rank `rank` reads in epoch `epoch`."""
    order = np.arange(num_shards)
    if shuffle:
        order = np.random.default_rng([seed, epoch]).permutation(num_shards)
    return order[rank::world].tolist()


def _sample_order(n: int, seed: int, epoch: int, shard: int, shuffle: bool) -> np.ndarray:
    return np.random.default_rng([seed, epoch, shard, 1]).permutation(n) if shuffle else np.arange(n)


def iter_rank_samples(shards: list[ShardInfo], rank: int, world: int, seed: int, shuffle: bool, start: int = 0,
                      wanted: Callable[[int], bool] = lambda i: True) -> Iterator[tuple[int, Sample]]:
    """(position, raw sample) of rank `rank` from position `start` on, endlessly; only positions that
    `wanted` accepts are yielded, and shards holding none of them are not read."""
    if len(shards) < world:
        raise PadError(f"the PAD build has {len(shards)} committed shards, fewer than {world} ranks; "
                       f"build with a smaller output.shard_size or train on fewer workers")
    cursor = 0
    for epoch in itertools.count():
        for index in rank_shard_order(len(shards), epoch, rank, world, seed, shuffle):
            shard = shards[index]
            first, end = max(cursor, start), cursor + shard.num_samples
            if end <= start or not any(wanted(i) for i in range(first, end)):
                cursor = end
                continue
            samples = list(iter_tar_samples(storage.read_bytes(shard.url), shard.url))
            if len(samples) != shard.num_samples:
                raise PadError(f"{shard.url}: {len(samples)} samples, its record says {shard.num_samples}")
            for offset, j in enumerate(_sample_order(len(samples), seed, epoch, index, shuffle)):
                position = cursor + offset
                if position >= start and wanted(position):
                    yield position, samples[j]
            cursor = end


class PadStream(IterableDataset):
    """The rank's samples from position `start`, built by `builder` (e.g. a PatchSampleBuilder)."""

    def __init__(self, shards: list[ShardInfo], builder: Callable[[Sample], object], *, rank: int, world: int,
                 seed: int, shuffle: bool, start: int, micro_batch: int):
        self.shards, self.builder = shards, builder
        self.rank, self.world, self.seed, self.shuffle = rank, world, seed, shuffle
        self.start, self.micro_batch = start, micro_batch

    def __iter__(self) -> Iterator[object]:
        wanted = worker_share(self.start, self.micro_batch)
        for _, sample in iter_rank_samples(self.shards, self.rank, self.world, self.seed, self.shuffle,
                                           self.start, wanted):
            yield self.builder(sample)
