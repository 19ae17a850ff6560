"""Plan boundaries along compressed tars, and what a resume says when a source file changed."""

from pad_pipeline.annotate.plan_source import _difference, shard_starts
from pad_pipeline.annotate.sources.base import SourceItem, tar_location
from pad_pipeline.dataset.source_index import SourceFile


def test_shards_never_split_a_compressed_tar():
    def tar(url, n, ranged):
        return [SourceItem(f"{url}/{i}", "", tar_location(url, f"{i}.jpg", 512 * i if ranged else None, 9))
                for i in range(n)]

    # gz 2 + gz 2 share a shard; gz 5 (> shard_size) is one shard; then an uncompressed tar cut every 4.
    items = tar("a.tar.gz", 2, False) + tar("b.tar.gz", 2, False) + tar("c.tar.gz", 5, False) + tar("d.tar", 6, True)
    assert shard_starts(items, 4) == [0, 4, 9, 13]
    plain = [SourceItem(str(i), "", f"/img/{i}.jpg") for i in range(7)]
    assert shard_starts(plain, 3) == [0, 3, 6]  # as before: every shard_size items


def test_the_difference_names_the_file_and_what_changed():
    a, b = SourceFile("s/a.tar", 10, "mtime=1"), SourceFile("s/b.tar", 20, "mtime=2")
    assert _difference([a, b], [a, SourceFile("s/b.tar", 21, "mtime=2")]) == "s/b.tar: 20 bytes when planned, 21 now"
    restamped = [a, SourceFile("s/b.tar", 20, "mtime=3")]
    assert _difference([a, b], restamped) == "s/b.tar: mtime=2 when planned, mtime=3 now"
    assert _difference([a], [a, b]) == "the source names 2 files, the plan 1 (s/b.tar is new)"
    assert "gives no etag" in _difference([a], [SourceFile("s/a.tar", 10, None)])
