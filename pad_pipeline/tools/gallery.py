"""`pad stats OUT --html FILE`: one self-contained static page with the numbers, the plots and a gallery.

Everything is inlined (plots as PNG and samples as JPEG `data:` URIs, CSS in the page, no script), and
a Content-Security-Policy forbids any request that is not a `data:` image, so the page opens offline and
can be mailed or attached as one file. Gallery samples are drawn uniformly at random without replacement
(`pick_positions`, seeded) from the committed samples using only the shard records' counts; then only
the shards holding them are read, members streamed, and each is drawn by `show.render_sample`.
"""

from __future__ import annotations

import base64
import html
import io
import math
import tarfile
from typing import Any, Iterator

import numpy as np

from pad_pipeline.core import storage
from pad_pipeline.dataset.layout import BuildLayout
from pad_pipeline.dataset.reader import committed_records
from pad_pipeline.dataset.records import Sample, SampleRecord
from pad_pipeline.tools.show import render_sample
from pad_pipeline.tools.stats import BuildStats

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
GALLERY_MIN_SIDE = 256  # small images are enlarged (nearest neighbour) up to this side, at most 4x

_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px} h2{font-size:18px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
.row{display:flex;flex-wrap:wrap;gap:32px;align-items:flex-start}
.plots{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start}
.plots img{width:560px;max-width:100%;background:#fff;border:1px solid #ddd}
.gallery{display:flex;flex-wrap:wrap;gap:12px}
.gallery figure{margin:0;width:300px;background:#fff;border:1px solid #ddd;padding:6px}
.gallery img{max-width:100%;display:block;margin:auto}
figcaption{font-size:12px;word-wrap:break-word} .key{font-family:monospace;color:#555}
"""


def pick_positions(counts: dict[int, int], n: int, seed: int = 0) -> dict[int, list[int]]:
    """`n` distinct samples uniformly at random: shard index -> sorted positions within the shard."""
    shards = sorted(counts)
    offsets = np.cumsum([0] + [counts[s] for s in shards])
    total = int(offsets[-1])
    chosen = np.random.default_rng(seed).choice(total, size=min(n, total), replace=False)
    picked: dict[int, list[int]] = {}
    for g in sorted(int(c) for c in chosen):
        i = int(np.searchsorted(offsets, g, side="right")) - 1
        picked.setdefault(shards[i], []).append(g - int(offsets[i]))
    return picked


def iter_samples_at(url: str, positions: list[int]) -> Iterator[Sample]:
    """The samples at `positions` (0-based, in tar order) of one shard tar, streamed; other members are
    skipped without being read."""
    wanted, position, key = set(positions), -1, None
    parts: dict[str, bytes] = {}
    fs, path = storage.filesystem(url)
    with fs.open(path, "rb") as f, tarfile.open(fileobj=f, mode="r:") as tar:
        for member in tar:
            member_key, _, ext = member.name.partition(".")
            if member_key != key:
                if key is not None and position in wanted:
                    yield _sample(key, parts, url)
                key, parts, position = member_key, {}, position + 1
            if position in wanted:
                parts[ext] = tar.extractfile(member).read()  # type: ignore[union-attr]
    if key is not None and position in wanted:
        yield _sample(key, parts, url)


def _sample(key: str, parts: dict[str, bytes], url: str) -> Sample:
    image = next(v for k, v in parts.items() if k != "json")
    return Sample(key, image, SampleRecord.decode(parts["json"], f"{url}/{key}.json"))


def gallery_samples(out: str, n: int, seed: int = 0) -> list[Sample]:
    counts = {i: r.num_samples for i, r in committed_records(out).items() if r.num_samples}
    samples: list[Sample] = []
    for index, positions in sorted(pick_positions(counts, n, seed).items()):
        samples.extend(iter_samples_at(BuildLayout(out).tar(index), positions))
    return samples


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _figure(sample: Sample) -> str:
    r = sample.record
    scale = max(1, min(4, math.ceil(GALLERY_MIN_SIDE / max(1, min(r.width, r.height)))))
    buf = io.BytesIO()
    render_sample(sample, scale=scale).save(buf, format="JPEG", quality=85)
    e = html.escape
    return (f'<figure><img src="{_data_uri(buf.getvalue(), "image/jpeg")}" alt="{e(sample.key)}">'
            f'<figcaption><div class="key">{e(sample.key)} ({r.width}x{r.height}, {len(r.labels)} regions)</div>'
            f'<div>{e(r.caption[:240])}</div><div><b>tags:</b> {e(", ".join(r.tags))}</div></figcaption></figure>')


def _table(rows: list[tuple[Any, ...]], head: tuple[str, ...]) -> str:
    e = html.escape
    cells = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return "<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + f"</tr>{cells}</table>"


def _mean_range(h: dict[str, Any]) -> str:
    return "-" if h["mean"] is None else f"{h['mean']:.3f} (min {h['min']:.3f}, max {h['max']:.3f})"


def _overview(j: dict[str, Any]) -> str:
    d = _mean_range
    rows = [("shards committed / planned", f"{j['shards']['committed']} / {j['shards']['planned']}"),
            ("inputs", j["inputs"]), ("samples", j["samples"]), ("regions", j["regions"]),
            ("images with no region", j["images_without_regions"]),
            ("regions per image", d(j["regions_per_image"])), ("mask area / image area", d(j["mask_area_share"])),
            ("box score", d(j["box_score"])), ("mask score", d(j["mask_score"])),
            ("unique tags", j["tags"]["unique"]),
            (f"tags in <= {j['tags']['long_tail_max_images']} images", j["tags"]["long_tail"]),
            ("image failures", j["failures"]["total"]), ("bytes in shards", j["shards"]["bytes"]["total"])]
    return _table(rows, ("", "value"))


def gallery_html(stats: BuildStats, plots: dict[str, bytes], samples: list[Sample], title: str) -> str:
    j = stats.to_json()
    e = html.escape
    images = "".join(f'<img src="{_data_uri(data, "image/png")}" alt="{e(name)}">' for name, data in plots.items())
    failures = _table(list(j["failures"]["by_reason"].items()), ("reason", "images")) if j["failures"]["total"] \
        else "<p>none</p>"
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>", '<div class="row"><div><h2>Overview</h2>', _overview(j),
        "<h2>Failures by reason</h2>", failures, "</div><div><h2>Most frequent tags</h2>",
        _table([tuple(t) for t in j["tags"]["top"]], ("tag", "images")), "</div></div>",
        "<h2>Plots</h2>", f'<div class="plots">{images}</div>',
        f'<h2>Gallery: {len(samples)} random samples</h2>',
        f'<div class="gallery" id="gallery">{"".join(_figure(s) for s in samples)}</div>',
        "</body></html>"])


def write_gallery(out: str, stats: BuildStats, plots: dict[str, bytes], html_path: str, n: int = 24,
                  seed: int = 0) -> int:
    """Write the page for the build at `out` to `html_path`; returns how many samples it shows."""
    samples = gallery_samples(out, n, seed)
    page = gallery_html(stats, plots, samples, f"PAD build {out.rstrip('/').split('/')[-1]}")
    storage.write_bytes(html_path, page.encode("utf-8"))
    return len(samples)
