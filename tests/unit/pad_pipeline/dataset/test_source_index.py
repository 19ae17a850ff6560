"""The source index record: JSON round trip and named errors."""

import pytest

from pad_pipeline.dataset.records import RecordError
from pad_pipeline.dataset.source_index import SourceFile, SourceIndex


def test_round_trip_and_bad_entries():
    index = SourceIndex("f" * 64, [SourceFile("s3://b/00000.tar", 123, 'ETag="x"'), SourceFile("a.tar", 0, None)])
    assert SourceIndex.decode(index.encode(), "source_index.json") == index
    with pytest.raises(RecordError, match=r"source_index.json files\[0\]: expected \[url, size, stamp\]"):
        SourceIndex.from_json({"source_fingerprint": "f", "files": [["a.tar", True, None]]}, "source_index.json")
    with pytest.raises(RecordError, match="field 'source_fingerprint' is missing"):
        SourceIndex.from_json({"files": []}, "source_index.json")
