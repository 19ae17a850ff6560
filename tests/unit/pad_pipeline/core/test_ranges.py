"""Shard selections: parsed without expansion, checked against the plan, printed back as ranges."""

import time

import pytest

from pad_pipeline.core.errors import PadError
from pad_pipeline.core.ranges import format_ranges, parse_ranges, select


def test_parse_and_select():
    assert parse_ranges("0,3-5") == [(0, 0), (3, 5)]
    assert parse_ranges(" 5 , 4,0-1,2") == [(0, 2), (4, 5)]  # merged and sorted
    assert select(parse_ranges("0,3-5"), 6) == [0, 3, 4, 5]


@pytest.mark.parametrize("text, message", [
    ("3-1", "ends before it starts"), ("a-b", "not a number"), ("-2", "not a number"), ("", "no shard given"),
    ("1-", "not a number"),
])
def test_bad_selections_are_one_line_errors(text, message):
    with pytest.raises(PadError, match=message) as err:
        parse_ranges(text)
    assert "\n" not in str(err.value)


def test_huge_ranges_are_never_expanded():
    t0 = time.perf_counter()
    ranges = parse_ranges("0-999999999999")
    with pytest.raises(PadError, match="shard 999999999999 is out of range; the plan has shards 0-5"):
        select(ranges, 6)
    assert time.perf_counter() - t0 < 0.1


def test_format_ranges():
    assert format_ranges([5, 0, 1, 2, 9, 8]) == "0-2,5,8-9"
    assert format_ranges([]) == ""
    assert parse_ranges(format_ranges([0, 1, 2, 7])) == [(0, 2), (7, 7)]
