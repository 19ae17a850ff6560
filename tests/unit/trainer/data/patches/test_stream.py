"""Shards -> rank streams: committed only, deterministic, disjoint ranks, resumable, worker-count independent."""

import os

import pytest
from torch.utils.data import DataLoader

from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.synthetic import random_field_build
from trainer.data.patches.stream import PadStream, iter_rank_samples, list_shards


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("pad"))
    random_field_build(out, num_samples=40, shard_size=7, min_side=16, max_side=24)
    # A shard whose record was never written (a crashed writer) must be invisible.
    with open(os.path.join(out, "pad-000099.tar"), "wb") as f:
        f.write(b"\0" * 1024)
    return out


def _keys(shards, rank, world, start, n, shuffle=True):
    it = iter_rank_samples(shards, rank, world, seed=3, shuffle=shuffle, start=start)
    return [next(it)[1].key for _ in range(n)]


def test_only_committed_shards_are_listed(build):
    shards = list_shards(build)
    assert [os.path.basename(s.url) for s in shards] == [f"pad-{i:06d}.tar" for i in range(6)]
    assert sum(s.num_samples for s in shards) == 40


def test_ranks_split_each_epoch_disjointly_and_cover_everything(build):
    shards = list_shards(build)
    per_rank = {}
    for rank in range(2):
        count = sum(shards[i].num_samples for i in range(len(shards)) if i in _rank_shards(shards, rank))
        per_rank[rank] = _keys(shards, rank, 2, 0, count)
    assert not set(per_rank[0]) & set(per_rank[1])
    assert len(set(per_rank[0]) | set(per_rank[1])) == 40


def _rank_shards(shards, rank):
    from trainer.data.patches.stream import rank_shard_order
    return set(rank_shard_order(len(shards), 0, rank, 2, 3, True))


def test_stream_is_deterministic_and_reshuffles_per_epoch(build):
    shards = list_shards(build)
    first = _keys(shards, 0, 1, 0, 80)
    assert first == _keys(shards, 0, 1, 0, 80)
    assert sorted(first[:40]) == sorted(first[40:]) and first[:40] != first[40:]
    assert _keys(shards, 0, 1, 0, 40, shuffle=False) == sorted(first[:40])


def test_resume_position_continues_the_same_sequence(build):
    shards = list_shards(build)
    full = _keys(shards, 0, 1, 0, 60)
    assert _keys(shards, 0, 1, 23, 37) == full[23:]


def test_worker_count_does_not_change_the_batch_sequence(build):
    shards = list_shards(build)

    def batches(workers):
        stream = PadStream(shards, lambda s: s.key, rank=0, world=1, seed=3, shuffle=True, start=4, micro_batch=3)
        it = iter(DataLoader(stream, batch_size=3, num_workers=workers, collate_fn=list))
        return [next(it) for _ in range(10)]

    sequential = batches(0)
    assert [k for b in sequential for k in b] == _keys(shards, 0, 1, 4, 30)
    assert batches(2) == sequential


def test_more_ranks_than_shards_is_a_clear_error(build):
    with pytest.raises(PadError, match="fewer than 8 ranks"):
        _keys(list_shards(build), 0, 8, 0, 1)


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(PadError, match="no plan here; is .* a PAD build folder"):
        list_shards(str(tmp_path))
