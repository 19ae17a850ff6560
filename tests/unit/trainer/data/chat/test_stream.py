"""Conversation entries -> rank streams: disjoint ranks, exact resume, worker-count independent, read by offset."""

import json

import numpy as np
import pytest
from torch.utils.data import DataLoader

from trainer.data.chat.index import build_index, load_index
from trainer.data.chat.stream import EpochOrders, SftStream, rank_entries


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    entries = [{"id": f"e{i}", "conversations": [{"from": "human", "value": "q " * (i % 5 + 1)},
                                                 {"from": "gpt", "value": "a"}]} for i in range(23)]
    path = root / "c.json"
    path.write_text(json.dumps(entries))
    index = str(root / "index.parquet")
    build_index(str(path), str(root), index)
    return str(path), index


def _entries(index_path, rank, world, start, n, group=False):
    orders = EpochOrders(load_index(index_path), seed=1, shuffle=True, group=group, micro=2, world=world)
    it = rank_entries(orders, rank, start)
    return [next(it)[1] for _ in range(n)]


@pytest.mark.parametrize("group", [False, True])
def test_ranks_are_disjoint_and_cover_an_epoch(data, group):
    _, index = data
    per_rank = [_entries(index, r, 2, 0, 10, group) for r in range(2)]
    assert not set(per_rank[0]) & set(per_rank[1])
    assert len(set(per_rank[0]) | set(per_rank[1])) == 20


def test_resume_continues_the_same_sequence(data):
    _, index = data
    full = _entries(index, 1, 2, 0, 30)
    assert _entries(index, 1, 2, 11, 19) == full[11:]


def _stream(data, workers: int, start: int) -> list[str]:
    path, index = data
    stream = SftStream(path, index, lambda entry, i: entry["id"], rank=0, world=1, seed=1, shuffle=True,
                       group_by_modality=True, start=start, micro_batch=2)
    loader = DataLoader(stream, batch_size=2, num_workers=workers, collate_fn=list)
    it = iter(loader)
    return [sid for _ in range(8) for sid in next(it)]


def test_the_stream_reads_entries_by_offset_and_ignores_the_worker_count(data):
    _, index = data
    orders = EpochOrders(load_index(index), seed=1, shuffle=True, group=True, micro=2, world=1)
    expected = [f"e{orders.entry_at(p)}" for p in range(4, 20)]
    assert _stream(data, 0, 4) == expected
    assert _stream(data, 2, 4) == expected


def test_epochs_follow_each_other_endlessly(data):
    _, index = data
    seq = _entries(index, 0, 1, 0, 46)
    assert sorted(seq[:23]) == sorted(seq[23:]) == list(range(23)) and seq[:23] != seq[23:]
    assert np.unique(seq).size == 23
