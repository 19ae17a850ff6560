"""`pad publish OUT --repo-id ID`: a dataset card and an upload of a finished build to the HF Hub.

Only committed shards are published, and only when every planned shard is committed (a partial build
is refused unless `allow_partial`). The card carries the stats, the tag histogram (from the per-shard
parquet indexes), and the provenance (models, config hash, source fingerprint). The token comes from
`HF_TOKEN` or the local `huggingface-cli login` cache; it is never written or printed.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq
import yaml

from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.layout import CONFIG_FILE, PLAN_FILE, BuildLayout, shard_files
from pad_pipeline.dataset.reader import committed_records, load_plan
from pad_pipeline.tools.status import build_status


@dataclass
class PublishPlan:
    files: list[str]
    card: str


def tag_histogram(out: str, indexes: list[int]) -> Counter:
    counts: Counter = Counter()
    for i in indexes:
        url = BuildLayout(out).index(i)
        if storage.exists(url):
            table = pq.read_table(io.BytesIO(storage.read_bytes(url)), columns=["tags"])
            for tags in table.column("tags").to_pylist():
                counts.update(tags or [])
    return counts


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def dataset_card(out: str, repo_id: str) -> str:
    status = build_status(out)
    records = committed_records(out)
    plan = load_plan(out)
    models = records[min(records)].extra.get("models", {}) if records else {}
    tags = tag_histogram(out, sorted(records))
    front = {
        "license": "other",
        "task_categories": ["image-segmentation", "object-detection", "image-to-text"],
        "size_categories": [_size_category(status.get("samples", 0))],
        "tags": ["patch-aligned", "pad", "webdataset", "sam", "grounding-dino", "ram"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "pad-*.tar"}]}],
    }
    lines = [
        "---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "",
        f"# {repo_id.split('/')[-1]}: a Patch-Aligned Dataset (PAD) build", "",
        "Images with captions, tags, and per-tag boxes and SAM masks (COCO RLE), built by PAD "
        "(RAM tags -> Grounding DINO boxes -> NMS -> SAM masks) for patch-aligned projector training "
        "(arXiv 2505.17316).", "",
        "## Contents", "",
        "| images planned | samples | regions | image failures | shards |", "| --- | --- | --- | --- | --- |",
        f"| {status['images_planned']} | {status.get('samples', 0)} | {status.get('regions', 0)} | "
        f"{status.get('image_failures', 0)} | {len(records)} |", "",
        "Failures by reason: " + (", ".join(f"`{k}` {v}" for k, v in sorted(status["failure_reasons"].items()))
                                  or "none") + ".", "",
        "## Most frequent tags", "",
        "| tag | images |", "| --- | --- |",
        *[f"| {t} | {c} |" for t, c in tags.most_common(30)], "",
        "## Format", "",
        "WebDataset tars `pad-NNNNNN.tar`, each with `<key>.jpg` and `<key>.json` per sample; the JSON has "
        "`image_id`, `size` [w, h], `caption`, `tags`, `labels` (`tag`, `bbox` xyxy pixels, `score`, "
        "`mask_score`, `area`, `rle_mask`). Decode a mask with "
        "`pycocotools.mask.decode({'size': [h, w], 'counts': rle_mask.encode()})`. `pad-NNNNNN.json` is "
        "each shard's record (sha256, counts, failures); `pad-NNNNNN.parquet` indexes every input image.", "",
        "```python",
        "from datasets import load_dataset",
        f"ds = load_dataset(\"{repo_id}\", split=\"train\", streaming=True)",
        "```", "",
        "## Provenance", "",
        f"- models: `{json.dumps(models, sort_keys=True)}`",
        f"- annotation config hash: `{plan.config_hash}` (full config in `config.yaml`)",
        f"- source fingerprint: `{plan.source_fingerprint}`", "",
    ]
    return "\n".join(lines)


def publish_plan(out: str, repo_id: str, allow_partial: bool = False) -> PublishPlan:
    status = build_status(out)
    if (status["failed_shards"] or status["pending_shards"]) and not allow_partial:
        raise PadError(f"{out}: shards {status['failed_shards'] + status['pending_shards']} are not committed; "
                       "rerun `pad annotate` to finish them, or pass --allow-partial")
    records = committed_records(out)
    if not records:
        raise PadError(f"{out}: no committed shard to publish")
    files = [PLAN_FILE, CONFIG_FILE]
    for i in sorted(records):
        files += shard_files(i)
    return PublishPlan(files=[f for f in files if storage.exists(storage.join(out, f))],
                       card=dataset_card(out, repo_id))


def publish(out: str, repo_id: str, dry_run: bool = False, private: bool = False,
            allow_partial: bool = False, api: Any = None) -> PublishPlan:
    """Upload the committed shards and the card to dataset repo `repo_id` (data first, card last)."""
    plan = publish_plan(out, repo_id, allow_partial)
    if dry_run:
        return plan
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()  # token from HF_TOKEN or the login cache; never passed around or logged
    from huggingface_hub import CommitOperationAdd

    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    fs, root = storage.filesystem(out)
    local = "://" not in out or out.startswith("file://")
    batches = commit_batches([(name, storage.size(storage.join(out, name))) for name in plan.files])
    for n, batch in enumerate(batches, 1):
        # Local files stream from disk; remote ones are read into memory one bounded batch at a time.
        ops = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=(
            fs._strip_protocol(storage.join(out, name)) if local else storage.read_bytes(storage.join(out, name))))
            for name in batch]
        api.create_commit(repo_id=repo_id, repo_type="dataset", operations=ops,
                          commit_message=f"PAD: add shards ({n}/{len(batches)})")
    api.create_commit(repo_id=repo_id, repo_type="dataset", commit_message="PAD: dataset card",
                      operations=[CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=plan.card.encode())])
    return plan


def commit_batches(files: list[tuple[str, int]], max_files: int = 150,
                   max_bytes: int = 4 * 2**30) -> list[list[str]]:
    """Group files into Hub commits of bounded count and size (few commits, none too large)."""
    batches: list[list[str]] = []
    current: list[str] = []
    current_bytes = 0
    for name, nbytes in files:
        if current and (len(current) >= max_files or current_bytes + nbytes > max_bytes):
            batches.append(current)
            current, current_bytes = [], 0
        current.append(name)
        current_bytes += nbytes
    if current:
        batches.append(current)
    return batches
