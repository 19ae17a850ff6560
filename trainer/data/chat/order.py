"""The order stage 2 visits conversations in: one global sequence, cut into micro-batches dealt to ranks.

Epoch e of the valid entries is a permutation seeded with (seed, e) (or file order without shuffling); with
`group_by_modality_length` it is LLaVA's `get_modality_length_grouped_indices`, made deterministic: image and
text-only entries are grouped separately into megabatches of `world * micro` entries, each sorted by length and
split into `world` micro-batches of balanced total length, the megabatches shuffled, and the two leftovers
appended as the one mixed megabatch. Global position p (epochs concatenated) belongs to micro-batch p // micro,
and micro-batch j to rank j mod world, so optimizer step s is global positions [s * G, (s + 1) * G) for every
world size, and a rank's position in its own sequence (`start`) is all a resume needs.
"""

from __future__ import annotations

import numpy as np


def split_to_even_chunks(indices: np.ndarray, lengths: np.ndarray, chunks: int) -> list[list[int]]:
    """LLaVA's: indices (longest first) dealt to `chunks` equal-sized lists, each to the shortest total."""
    if len(indices) % chunks:
        return [indices[k::chunks].tolist() for k in range(chunks)]
    per = len(indices) // chunks
    out: list[list[int]] = [[] for _ in range(chunks)]
    totals = [0] * chunks
    for i in indices.tolist():
        k = min((c for c in range(chunks) if len(out[c]) < per), key=lambda c: totals[c])
        out[k].append(i)
        totals[k] += int(lengths[i])
    return out


def length_grouped(lengths: np.ndarray, micro: int, world: int, rng: np.random.Generator) -> np.ndarray:
    """LLaVA's `get_length_grouped_indices` (positions into `lengths`)."""
    order = rng.permutation(len(lengths))
    mega = world * micro
    out: list[int] = []
    for k in range(0, len(order), mega):
        block = order[k:k + mega]
        block = block[np.argsort(-lengths[block], kind="stable")]
        for chunk in split_to_even_chunks(block, lengths, world):
            out += chunk
    return np.asarray(out, dtype=np.int64)


def modality_grouped(ids: np.ndarray, lengths: np.ndarray, micro: int, world: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Entry ids in LLaVA's modality-grouped order (`lengths` > 0: with image, < 0: text only)."""
    if (lengths > 0).all() or (lengths < 0).all():
        return ids[length_grouped(np.abs(lengths), micro, world, rng)]
    mega = world * micro
    groups = []
    for mask in (lengths > 0, lengths < 0):
        sub_ids, sub_len = ids[mask], np.abs(lengths[mask])
        grouped = sub_ids[length_grouped(sub_len, micro, world, rng)]
        groups.append([grouped[k:k + mega] for k in range(0, len(grouped), mega)])
    (mm, lang) = groups
    leftover = np.sort(np.concatenate([mm[-1], lang[-1]]))
    full = mm[:-1] + lang[:-1]
    blocks = [full[k] for k in rng.permutation(len(full))] + [leftover]
    return np.concatenate(blocks)


def epoch_order(valid: np.ndarray, lengths: np.ndarray, epoch: int, seed: int, shuffle: bool, group: bool,
                micro: int, world: int) -> np.ndarray:
    """The entry ids of epoch `epoch` (only `valid` entries)."""
    ids = np.flatnonzero(valid)
    rng = np.random.default_rng([seed, epoch])
    if group:
        return modality_grouped(ids, lengths[ids], micro, world, rng)
    return ids[rng.permutation(len(ids))] if shuffle else ids


def rank_to_global(q: int, rank: int, world: int, micro: int) -> int:
    """Global position of the q-th position of rank `rank`'s own sequence."""
    return ((q // micro) * world + rank) * micro + q % micro
