"""The dataset card (`README.md`) of a published PAD build: Hub metadata, numbers, plots, provenance.

`dataset_card(info)` renders a `CardInfo`: YAML metadata whose `configs` point `datasets.load_dataset`
at the shard tars only (read as WebDataset), then how to load it, the statistics of `pad stats` and
its plots (PNGs in the repository's `stats/`), the sample-record schema, the models, thresholds and
revisions that made it, the source, the licence (the publisher's statement, never a guess), the
citation and the command that built it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from pad_pipeline.dataset.publish_config import PublishConfig

PAPER = "arXiv:2505.17316 (https://arxiv.org/abs/2505.17316)"

SCHEMA = [
    ("image_id", "string", "the input's id in the source corpus"),
    ("size", "[int, int]", "[width, height] of the stored image (EXIF orientation applied)"),
    ("caption", "string", "the source caption"),
    ("tags", "list[string]", "image-level tags, best first"),
    ("tag_scores", "list[float]", "the tagger's score of each tag (when recorded)"),
    ("labels[].tag", "string", "the tag that prompted this region"),
    ("labels[].bbox", "[float x4]", "box [x0, y0, x1, y1] in pixels of the stored image"),
    ("labels[].score", "float", "detector box score"),
    ("labels[].mask_score", "float", "segmenter mask score"),
    ("labels[].area", "int", "mask pixels"),
    ("labels[].rle_mask", "string", "COCO compressed RLE counts of a [height, width] mask (column-major)"),
]

_STAGES = (("tagger", "tag", ("threshold", "max_tags")), ("detector", "detect", ("box_threshold", "text_threshold")),
           ("nms", "nms", ("iou_threshold", "max_boxes")), ("segmenter", "segment", ("mask_threshold",)))


@dataclass
class CardInfo:
    repo_id: str
    stats: dict[str, Any]                     # BuildStats.to_json()
    publish: PublishConfig
    data_glob: str                            # the tars, e.g. layout.TAR_GLOB
    plots: list[str]                          # repository paths of the PNGs
    tar_pattern: str = ""                     # brace pattern of every tar (webdataset's url form)
    build_config: dict[str, Any] = field(default_factory=dict)   # OUT/config.yaml, raw
    provenance: list[dict[str, Any]] = field(default_factory=list)  # distinct shard-record `models`
    config_hash: str = ""
    source_fingerprint: str = ""
    pad_version: str = "unknown"


def size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return name
    return "10M<n<100M"


def card_metadata(info: CardInfo) -> dict[str, Any]:
    p = info.publish
    meta: dict[str, Any] = {}
    if p.pretty_name:
        meta["pretty_name"] = p.pretty_name
    if p.license:
        meta["license"] = p.license
        meta.update({k: v for k, v in (("license_name", p.license_name), ("license_link", p.license_link)) if v})
    meta.update({
        "task_categories": ["image-segmentation", "object-detection", "image-to-text"],
        "size_categories": [size_category(info.stats["samples"])],
        "annotations_creators": ["machine-generated"],
        "tags": ["patch-aligned", "pad", "webdataset", "grounded-sam", "segmentation-masks"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": info.data_glob}]}],
    })
    return meta


def _numbers(s: dict[str, Any]) -> list[str]:
    def mean(h: dict[str, Any]) -> str:
        return "-" if h["mean"] is None else f"{h['mean']:.3f}"

    rows = [("samples", s["samples"]), ("inputs (images listed)", s["inputs"]), ("regions", s["regions"]),
            ("images with no region", s["images_without_regions"]),
            ("regions per image, mean", mean(s["regions_per_image"])),
            ("mask area / image area, mean", mean(s["mask_area_share"])),
            ("box score, mean", mean(s["box_score"])), ("mask score, mean", mean(s["mask_score"])),
            ("unique tags", s["tags"]["unique"]),
            (f"tags in <= {s['tags']['long_tail_max_images']} images", s["tags"]["long_tail"]),
            ("image failures", s["failures"]["total"]), ("shards", s["shards"]["committed"]),
            ("bytes in shard tars", s["shards"]["bytes"]["total"])]
    failures = ", ".join(f"`{k}` {v}" for k, v in s["failures"]["by_reason"].items()) or "none"
    return ["| | |", "| --- | --- |", *[f"| {k} | {v} |" for k, v in rows], "",
            f"Failures by reason: {failures}. The full numbers are in `stats/stats.json` (`pad stats --json`).", ""]


def _revision(model: dict[str, Any]) -> str:
    return "-" if "checkpoint" not in model else model.get("revision") or "default branch"


def _models(info: CardInfo) -> list[str]:
    models = info.build_config.get("models") or {}
    lines = ["| stage | model | checkpoint | revision | thresholds |", "| --- | --- | --- | --- | --- |"]
    for section, stage, knobs in _STAGES:
        m = models.get(section) or {}
        thresholds = ", ".join(f"{k}={m[k]}" for k in knobs if m.get(k) is not None) or "-"
        lines.append(f"| {stage} | {m.get('kind', 'torchvision nms' if section == 'nms' else '-')} | "
                     f"{m.get('checkpoint', '-')} | {_revision(m)} | {thresholds} |")
    recorded = "; ".join(f"`{json.dumps(p, sort_keys=True)}`" for p in info.provenance) or "none recorded"
    return [*lines, "", f"As recorded in the shard records: {recorded}.", ""]


def _source_and_licence(info: CardInfo) -> list[str]:
    p, src = info.publish, info.build_config.get("source") or {}
    lines = ["## Source", "", p.source or "The publisher has not described the source of the images and captions.",
             "", f"Built from a `{src.get('kind', '?')}` source (`{src.get('path', '?')}`); "
             f"source fingerprint `{info.source_fingerprint}`.", "", "## Licence", ""]
    if p.license:
        name = p.license_name or p.license
        lines.append(f"Stated by the publisher: **{name}**" + (f" ({p.license_link})." if p.license_link else "."))
    else:
        lines.append("**No licence has been stated for this dataset by its publisher.** Do not assume one; the "
                     "images and captions keep the terms of their source.")
    lines += ["", "## Citation", ""]
    if p.citation:
        lines += ["```bibtex", p.citation.strip(), "```", ""]
    lines.append(f"The annotation method (patch-aligned data for projector training) is {PAPER}.")
    return lines + [""]


def dataset_card(info: CardInfo) -> str:
    name = info.publish.pretty_name or info.repo_id.split("/")[-1]
    glob = info.data_glob
    lines = [
        "---", yaml.safe_dump(card_metadata(info), sort_keys=False, allow_unicode=True).strip(), "---", "",
        f"# {name}", "",
        "A Patch-Aligned Dataset (PAD) build: images with captions, image-level tags, and per tag boxes and "
        "segmentation masks (COCO RLE), made by PAD's chain tag -> Grounding DINO boxes -> NMS -> SAM masks. "
        "The labels are machine-generated and not reviewed by people.", "",
        "## Load it", "",
        "```python", "from datasets import load_dataset",
        f'ds = load_dataset("{info.repo_id}", split="train", streaming=True)  # columns __key__, jpg, json',
        "", "import webdataset as wds  # or the tars themselves",
        f'url = "https://huggingface.co/datasets/{info.repo_id}/resolve/main/{info.tar_pattern or glob}"',
        'rows = wds.WebDataset(f"pipe:curl -s -L {url}", shardshuffle=False)',
        "```", "",
        "Decode a mask with `pycocotools.mask.decode({'size': [h, w], 'counts': label['rle_mask'].encode()})`. "
        f"The repository is a PAD build: `pad status hf://datasets/{info.repo_id}` reads it, and `pad pretrain` "
        f"streams it with `data.path: hf://datasets/{info.repo_id}`.", "",
        "## Contents", "", *_numbers(info.stats),
        *[f"![{p.rsplit('/', 1)[-1][:-4]}]({p})" for p in info.plots], "",
        "## Files and record schema", "",
        f"WebDataset tars `{glob}`, each `<key>.jpg` + `<key>.json` per sample, keys sorted; beside each tar its "
        "parquet index (every input with its status: `ok` or a failure reason) and its shard record (`.json`: "
        "counts, sha256 of the tar, failures, models). `plan.json` is the frozen shard plan and `config.yaml` "
        "the resolved manifest. Fields of `<key>.json`:", "",
        "| field | type | meaning |", "| --- | --- | --- |", *[f"| `{f}` | {t} | {m} |" for f, t, m in SCHEMA], "",
        "## Annotation", "", *_models(info), *_source_and_licence(info),
        "## How it was built", "",
        f"With PAD {info.pad_version}: `pad annotate config.yaml` (the resolved manifest in this repository; "
        f"annotation config hash `{info.config_hash}`), then `pad publish`. The same manifest, source and "
        "models give byte-identical shards.", "",
    ]
    return "\n".join(lines)
