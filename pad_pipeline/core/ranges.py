"""Shard selections such as `0,3-5`: parsed and checked without expanding them, and printed back.

`parse_ranges("0,3-5")` gives `[(0, 0), (3, 5)]`; `3-1`, `-2` or `a` are one-line errors, and a range
like `0-999999999` costs nothing until it is intersected with a plan (`select(ranges, n)`).
`format_ranges([0, 1, 2, 5])` gives `0-2,5`, the form `pad status` prints and `--shards` reads.
"""

from __future__ import annotations

from typing import Iterable

from pad_pipeline.core.errors import PadError

Range = tuple[int, int]


def parse_ranges(text: str, option: str = "--shards") -> list[Range]:
    """Inclusive ranges of `text`, merged and sorted; an error names `option` and the bad part."""
    ranges: list[Range] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo_text, sep, hi_text = part.partition("-")
        if not lo_text.isdigit() or (sep and not hi_text.isdigit()):
            raise PadError(f"{option} {text!r}: {part!r} is not a number or a range like 3-5")
        lo, hi = int(lo_text), int(hi_text) if sep else int(lo_text)
        if hi < lo:
            raise PadError(f"{option} {text!r}: range {part!r} ends before it starts; write {hi}-{lo}")
        ranges.append((lo, hi))
    if not ranges:
        raise PadError(f"{option} {text!r}: no shard given; write e.g. 0,3-5")
    return merge_ranges(ranges)


def merge_ranges(ranges: Iterable[Range]) -> list[Range]:
    merged: list[Range] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def select(ranges: list[Range], count: int, option: str = "--shards") -> list[int]:
    """The indexes of `ranges` among 0..count-1; any index past the end is an error naming it."""
    if ranges and ranges[-1][1] >= count:
        last = ranges[-1][1]
        raise PadError(f"{option}: shard {last} is out of range; the plan has shards 0-{count - 1}")
    return [i for lo, hi in ranges for i in range(lo, hi + 1)]


def format_ranges(indexes: Iterable[int]) -> str:
    """`[0, 1, 2, 5]` -> `0-2,5` (empty string for none)."""
    merged = merge_ranges((i, i) for i in indexes)
    return ",".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in merged)
