"""The PNG plots of `pad stats --plots DIR` (and of the gallery page and the dataset card).

`stats_plots(stats)` draws each figure with matplotlib's Agg backend (no display, no fonts fetched)
into PNG bytes, `name -> bytes`, in a fixed order; `write_plots` writes them into a folder. The PNGs
carry no timestamp, so the same statistics give the same files.
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np

from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError
from pad_pipeline.tools.stats import TAIL_MAX_IMAGES, BuildStats, Histogram, top_tags

PLOT_NAMES = ("regions_per_image", "mask_area_share", "scores", "top_tags", "tag_frequency", "shard_sizes")


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PadError("plots need matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bars(ax, hist: Histogram, **kw) -> None:
    ax.bar(hist.edges[:-1], hist.counts, width=np.diff(hist.edges), align="edge", **kw)


def _regions_per_image(ax, stats: BuildStats) -> None:
    hist = stats.regions_per_image
    top = int(min(hist.max, hist.bins - 1)) + 1 if hist.n else 1
    ax.bar(np.arange(top), hist.counts[:top], width=0.8, color="#4c72b0")
    ax.set(title=f"regions per image (mean {hist.mean or 0:.2f}; {hist.over} images above {hist.bins - 1})",
           xlabel="regions", ylabel="images")


def _mask_area_share(ax, stats: BuildStats) -> None:
    _bars(ax, stats.mask_area_share, color="#55a868", edgecolor="white")
    ax.set(title="mask area / image area, per region", xlabel="share of the image", ylabel="regions")


def _scores(ax, stats: BuildStats) -> None:
    for hist, name, colour in ((stats.box_score, "box score", "#4c72b0"), (stats.mask_score, "mask score", "#c44e52")):
        ax.stairs(hist.counts, hist.edges, label=f"{name} (mean {hist.mean or 0:.3f})", color=colour, linewidth=1.5)
    outside = sum(h.under + h.over for h in (stats.box_score, stats.mask_score))
    ax.set(title="score distributions, per region" + (f" ({outside} outside [0, 1])" if outside else ""),
           xlabel="score", ylabel="regions")
    ax.legend()


def _top_tags(ax, stats: BuildStats, k: int = 30) -> None:
    top = top_tags(stats.image_tags, k)[::-1]
    ax.barh([t for t, _ in top], [c for _, c in top], color="#8172b2")
    ax.set(title=f"the {len(top)} most frequent tags (of {len(stats.image_tags)})", xlabel="images")
    ax.tick_params(axis="y", labelsize=7)


def _tag_frequency(ax, stats: BuildStats) -> None:
    counts = np.array(sorted(stats.image_tags.values(), reverse=True))
    if counts.size:
        ax.loglog(np.arange(1, counts.size + 1), counts, color="#8172b2")
    ax.axhline(TAIL_MAX_IMAGES, color="grey", linestyle="--",
               label=f"long tail: {stats.long_tail()} tags in <= {TAIL_MAX_IMAGES} images")
    ax.set(title="tag frequency by rank", xlabel="rank", ylabel="images")
    ax.legend()


def _shard_sizes(ax, stats: BuildStats) -> None:
    mib = np.array(stats.shard_bytes, dtype=np.float64) / 2**20
    ax.hist(mib, bins=min(30, max(1, mib.size)), color="#937860", edgecolor="white")
    ax.set(title=f"shard sizes ({mib.size} shards, {sum(stats.shard_samples)} samples)", xlabel="MiB",
           ylabel="shards")


_FIGURES: dict[str, tuple[Callable, tuple[float, float]]] = {
    "regions_per_image": (_regions_per_image, (6.4, 3.6)),
    "mask_area_share": (_mask_area_share, (6.4, 3.6)),
    "scores": (_scores, (6.4, 3.6)),
    "top_tags": (_top_tags, (6.4, 6.4)),
    "tag_frequency": (_tag_frequency, (6.4, 3.6)),
    "shard_sizes": (_shard_sizes, (6.4, 3.6)),
}


def stats_plots(stats: BuildStats) -> dict[str, bytes]:
    """name -> PNG bytes of every plot in `PLOT_NAMES`."""
    plt = _pyplot()
    out: dict[str, bytes] = {}
    for name in PLOT_NAMES:
        draw, size = _FIGURES[name]
        fig, ax = plt.subplots(figsize=size, dpi=100)
        try:
            draw(ax, stats)
            fig.tight_layout()
            buf = io.BytesIO()
            fig.savefig(buf, format="png", metadata={"Software": None})
            out[name] = buf.getvalue()
        finally:
            plt.close(fig)
    return out


def write_plots(plots: dict[str, bytes], folder: str) -> list[str]:
    """Write `name.png` for each plot into `folder`; returns the URLs written."""
    urls = []
    for name, data in plots.items():
        urls.append(storage.join(folder, f"{name}.png"))
        storage.write_bytes(urls[-1], data)
    return urls
