"""The stage-2 order: LLaVA's modality-length grouping, deterministic; one global sequence dealt to ranks."""

import numpy as np
import pytest

from trainer.data.chat.order import epoch_order, modality_grouped, rank_to_global, split_to_even_chunks


def llava_split_to_even_chunks(indices, lengths, num_chunks):
    """LLaVA's llava_trainer.split_to_even_chunks, verbatim, as the reference."""
    if len(indices) % num_chunks != 0:
        return [indices[i::num_chunks] for i in range(num_chunks)]
    num_indices_per_chunk = len(indices) // num_chunks
    chunks = [[] for _ in range(num_chunks)]
    chunks_lengths = [0 for _ in range(num_chunks)]
    for index in indices:
        shortest_chunk = chunks_lengths.index(min(chunks_lengths))
        chunks[shortest_chunk].append(index)
        chunks_lengths[shortest_chunk] += lengths[index]
        if len(chunks[shortest_chunk]) == num_indices_per_chunk:
            chunks_lengths[shortest_chunk] = float("inf")
    return chunks


@pytest.mark.parametrize("n", [12, 13])
def test_split_to_even_chunks_is_llavas(n):
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 100, 40)
    indices = np.argsort(-lengths[:n], kind="stable")
    ours = split_to_even_chunks(indices, lengths, 3)
    assert ours == [list(map(int, c)) for c in llava_split_to_even_chunks(indices.tolist(), lengths, 3)]


def _lengths(n_image: int, n_text: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lengths = np.concatenate([rng.integers(1, 200, n_image), -rng.integers(1, 200, n_text)])
    return lengths[rng.permutation(len(lengths))]


def test_grouped_micro_batches_hold_one_modality_and_sorted_lengths():
    lengths, micro, world = _lengths(70, 50), 4, 2
    ids = np.arange(len(lengths))
    order = modality_grouped(ids, lengths, micro, world, np.random.default_rng(1))
    assert sorted(order.tolist()) == ids.tolist()
    mega = micro * world
    full = (70 // mega + 50 // mega) * mega  # everything before the one mixed leftover megabatch
    for k in range(0, full, micro):
        signs = np.sign(lengths[order[k:k + micro]])
        assert len(set(signs.tolist())) == 1, f"micro-batch {k // micro} mixes modalities"
    for k in range(0, full, mega):  # within a megabatch the longest entries come first
        block = np.abs(lengths[order[k:k + mega]])
        assert block.max() == max(block[0], block[micro])
    assert len(set(np.sign(lengths[order[full:]]).tolist())) == 2


def test_epoch_orders_are_deterministic_skip_invalid_entries_and_reshuffle():
    lengths = _lengths(30, 20)
    valid = np.ones(50, dtype=bool)
    valid[[3, 7]] = False
    for group in (False, True):
        a = epoch_order(valid, lengths, 0, 5, True, group, 4, 2)
        assert np.array_equal(a, epoch_order(valid, lengths, 0, 5, True, group, 4, 2))
        assert sorted(a.tolist()) == [i for i in range(50) if i not in (3, 7)]
        assert not np.array_equal(a, epoch_order(valid, lengths, 1, 5, True, group, 4, 2))
    assert epoch_order(valid, lengths, 0, 5, False, False, 4, 2).tolist() == sorted(a.tolist())


def test_ranks_take_alternate_micro_batches_of_the_global_sequence():
    micro, world = 3, 2
    positions = {r: [rank_to_global(q, r, world, micro) for q in range(9)] for r in range(world)}
    assert positions[0] == [0, 1, 2, 6, 7, 8, 12, 13, 14]
    assert positions[1] == [3, 4, 5, 9, 10, 11, 15, 16, 17]
