"""`pad stats --html`: a uniform random choice of samples, read by position, in one page that asks for
nothing outside itself (the browser test is tests/integration/test_look_and_share.py)."""

import base64
import io
import re
from collections import Counter

import numpy as np
from PIL import Image

from pad_pipeline.core import storage
from pad_pipeline.dataset.reader import iter_tar_samples
from pad_pipeline.dataset.synthetic import random_field_build
from pad_pipeline.tools.gallery import CSP, gallery_html, iter_samples_at, pick_positions, write_gallery
from pad_pipeline.tools.plots import stats_plots
from pad_pipeline.tools.stats import compute_stats


def test_positions_are_distinct_seeded_and_uniform():
    counts = {0: 10, 2: 30, 5: 60}
    picked = pick_positions(counts, 20, seed=3)
    assert picked == pick_positions(counts, 20, seed=3) != pick_positions(counts, 20, seed=4)
    assert sum(len(p) for p in picked.values()) == 20
    assert all(p == sorted(set(p)) and max(p) < counts[s] for s, p in picked.items())
    assert sum(len(p) for p in pick_positions(counts, 500).values()) == 100  # never more than there are
    hits = Counter()
    for seed in range(300):
        for shard, positions in pick_positions(counts, 10, seed).items():
            hits[shard] += len(positions)
    share = np.array([hits[0], hits[2], hits[5]]) / 3000
    assert np.allclose(share, [0.1, 0.3, 0.6], atol=0.03)


def test_samples_read_by_position_equal_the_tar(tmp_path):
    out = tmp_path / "b"
    random_field_build(str(out), num_samples=7, shard_size=7, min_side=16, max_side=20)
    url = str(out / "pad-000000.tar")
    every = list(iter_tar_samples(storage.read_bytes(url)))
    assert list(iter_samples_at(url, [0, 3, 6])) == [every[0], every[3], every[6]]


def test_page_is_self_contained_with_the_gallery(tmp_path):
    out = tmp_path / "b"
    random_field_build(str(out), num_samples=9, shard_size=4, min_side=30, max_side=40)
    stats = compute_stats(str(out))
    page_path = tmp_path / "page.html"
    assert write_gallery(str(out), stats, stats_plots(stats), str(page_path), n=5) == 5
    page = page_path.read_text()
    assert CSP in page and "<script" not in page
    sources = re.findall(r'src="([^"]+)"', page)
    assert len(sources) == 6 + 5 and all(s.startswith("data:image/") for s in sources)
    assert not re.search(r'(href|url\()\s*=?\s*"?(https?:|//)', page)
    gallery = page.split('id="gallery"', 1)[1]
    first = re.search(r'src="data:image/jpeg;base64,([^"]+)"', gallery).group(1)
    assert min(Image.open(io.BytesIO(base64.b64decode(first))).size) >= 90  # small images enlarged
    assert gallery.count("<figure>") == 5 and str(stats.samples) in page


def test_html_escapes_captions(tmp_path):
    out = tmp_path / "b"
    random_field_build(str(out), num_samples=1, shard_size=1, min_side=16, max_side=20)
    stats = compute_stats(str(out))
    sample = next(iter_tar_samples(storage.read_bytes(str(out / "pad-000000.tar"))))
    sample.record.caption = "<img src=x onerror=alert(1)>"
    page = gallery_html(stats, {}, [sample], "t")
    assert "<img src=x" not in page and "&lt;img src=x" in page
