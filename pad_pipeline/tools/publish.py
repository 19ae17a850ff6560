"""`pad publish OUT --repo-id ID [--dry-run DIR]`: a finished build as a Hub dataset repository.

`repository_files(out, repo_id, publish)` lists what the repository holds: the committed shards (tar,
parquet index, record), `plan.json`, `config.yaml` (the resolved manifest; `plan/`, which names the
source files, stays behind), and generated files: `README.md` (the card, `tools/card.py`),
`stats/stats.json` and the plots of `pad stats` in `stats/`. The repository keeps the build's layout,
so it is itself a PAD build (`pad status hf://datasets/ID`), unless the shards would put more than
10,000 entries in one folder: then they go into `part-NNN/` folders of at most 3,000 shards each.
`--dry-run DIR` writes that folder to DIR (hard links to the build where possible, never inside the
build); otherwise `hub_upload.upload` sends it in bounded, resumable commits. The token comes from
`HF_TOKEN` or the `hf auth login` cache, inside huggingface_hub; PAD never reads, writes or logs it.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, Callable

import yaml
from pydantic import ValidationError

from pad_pipeline.core import storage
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.layout import (
    CONFIG_FILE,
    PLAN_FILE,
    TAR_GLOB,
    BuildLayout,
    index_name,
    record_name,
    tar_name,
)
from pad_pipeline.dataset.publish_config import PublishConfig
from pad_pipeline.dataset.reader import committed_records, load_plan
from pad_pipeline.tools.card import CardInfo, dataset_card
from pad_pipeline.tools.repo_file import RepoFile
from pad_pipeline.tools.status import build_status

MAX_FOLDER_ENTRIES = 10_000       # the Hub's recommended limit of entries per folder
SHARDS_PER_FOLDER = 3_000         # x3 files per shard: 9,000 entries per part-NNN/ folder
MAX_FILE_BYTES = 50 * 10**9       # the Hub's hard limit per file
RECOMMENDED_FILE_BYTES = 20 * 10**9


def _generated(path: str, data: bytes) -> RepoFile:
    return RepoFile(path, len(data), data=data)


def shard_folder(index: int, num_shards: int) -> str:
    """'' when the shards fit in the repository's root, else `part-NNN/`."""
    return "" if 3 * num_shards + 8 <= MAX_FOLDER_ENTRIES else f"part-{index // SHARDS_PER_FOLDER:03d}/"


def _tar_pattern(indexes: list[int], folder: str) -> str:
    if folder or indexes != list(range(len(indexes))):
        return ""
    return TAR_GLOB.replace("*", f"{{{indexes[0]:06d}..{indexes[-1]:06d}}}")


def _build_config(out: str) -> dict[str, Any]:
    url = BuildLayout(out).config
    return (yaml.safe_load(storage.read_bytes(url)) or {}) if storage.exists(url) else {}


def publish_settings(out: str, overrides: dict[str, Any] | None = None) -> PublishConfig:
    """The `publish:` section of OUT/config.yaml with the flags' values (`overrides`) on top."""
    section = dict(_build_config(out).get("publish") or {})
    section.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return PublishConfig(**section)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise PadError(f"{BuildLayout(out).config} or flags: publish{'.' + where if where else ''}: "
                       f"{err['msg'].removeprefix('Value error, ')}") from None


def _shard_files(out: str, records: dict) -> tuple[list[RepoFile], str, str]:
    layout, files = BuildLayout(out), []
    indexes = sorted(records)
    folder_of = {i: shard_folder(i, max(indexes) + 1) for i in indexes}
    for i in indexes:
        r, folder = records[i], folder_of[i]
        files.append(RepoFile(folder + tar_name(i), r.bytes, layout.tar(i), sha256=r.sha256))
        for name, url in ((index_name(i), layout.index(i)), (record_name(i), layout.record(i))):
            if storage.exists(url):
                files.append(RepoFile(folder + name, storage.size(url), url))
    glob = ("part-*/" if folder_of[indexes[0]] else "") + TAR_GLOB
    return files, glob, _tar_pattern(indexes, folder_of[indexes[0]])


def _check_sizes(files: list[RepoFile], warn: Callable[[str], None]) -> None:
    for f in files:
        if f.size > MAX_FILE_BYTES:
            raise PadError(f"{f.path}: {f.size / 1e9:.1f} GB is over the Hub's 50 GB per file; rebuild with a "
                           "smaller output.shard_size")
        if f.size > RECOMMENDED_FILE_BYTES:
            warn(f"{f.path}: {f.size / 1e9:.1f} GB is over the Hub's recommended 20 GB per file")


def repository_files(out: str, repo_id: str, publish: PublishConfig, allow_partial: bool = False,
                     warn: Callable[[str], None] = print) -> list[RepoFile]:
    """Every file of the dataset repository of the build at `out` (data first, the card last)."""
    from pad_pipeline.tools.plots import stats_plots
    from pad_pipeline.tools.stats import compute_stats

    status = build_status(out)
    unfinished = ",".join(r for r in (status["failed_shards"], status["pending_shards"], status["damaged_shards"]) if r)
    if unfinished and not allow_partial:
        raise PadError(f"{out}: shards {unfinished} are not committed; rerun `pad annotate` to finish them, "
                       "or pass --allow-partial")
    records = committed_records(out)
    if not records:
        raise PadError(f"{out}: no committed shard to publish")
    files, glob, pattern = _shard_files(out, records)
    layout = BuildLayout(out)
    files += [RepoFile(name, storage.size(url), url) for name, url in ((PLAN_FILE, layout.plan),
              (CONFIG_FILE, layout.config)) if storage.exists(url)]
    _check_sizes(files, warn)
    stats = compute_stats(out)
    plots = stats_plots(stats)
    files.append(_generated("stats/stats.json", json.dumps(stats.to_json(), indent=1).encode()))
    files += [_generated(f"stats/{name}.png", data) for name, data in plots.items()]
    plan = load_plan(out)
    provenance = {json.dumps(r.extra.get("models"), sort_keys=True) for r in records.values() if r.extra.get("models")}
    info = CardInfo(repo_id, stats.to_json(), publish, glob, [f"stats/{n}.png" for n in plots], pattern,
                    _build_config(out), [json.loads(p) for p in sorted(provenance)], plan.config_hash,
                    plan.source_fingerprint, _pad_version())
    files.append(_generated("README.md", dataset_card(info).encode()))
    return files


def _pad_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pad")
    except PackageNotFoundError:
        return "unknown"


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def write_repository(out: str, files: list[RepoFile], folder: str) -> None:
    """Write the repository to the local `folder`: build files hard-linked (copied where links cannot
    be made), generated files written. `folder` may not lie inside the build."""
    if "://" in folder or ("://" not in out and _inside(folder, out)):
        raise PadError(f"--dry-run {folder}: give a local folder outside the build {out}")
    for f in files:
        dest = os.path.join(folder, *f.path.split("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if os.path.lexists(dest):
            os.remove(dest)
        if f.data is not None:
            storage.write_bytes(dest, f.data)
        elif "://" not in f.source:  # type: ignore[operator]
            try:
                os.link(f.source, dest)  # type: ignore[arg-type]
            except OSError:
                shutil.copyfile(f.source, dest)  # type: ignore[arg-type]
        else:
            fs, path = storage.filesystem(f.source)  # type: ignore[arg-type]
            with fs.open(path, "rb") as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst, 16 * 2**20)


def publish(out: str, repo_id: str, dry_run: str | None = None, private: bool = False, allow_partial: bool = False,
            settings: dict[str, Any] | None = None, api: Any = None, log: Callable[[str], None] = print
            ) -> list[RepoFile]:
    """Publish the build at `out` to dataset repo `repo_id`, or with `dry_run` write the repository to
    that folder; returns the repository's files."""
    cfg = publish_settings(out, settings)
    if not cfg.license:
        log("pad publish: warning: no licence stated (publish.license or --license); the card will say so")
    files = repository_files(out, repo_id, cfg, allow_partial, warn=lambda m: log(f"pad publish: warning: {m}"))
    if dry_run:
        write_repository(out, files, dry_run)
        return files
    from pad_pipeline.tools.hub_upload import upload

    upload(files, repo_id, private=private, max_files=cfg.max_files_per_commit,
           max_bytes=cfg.max_bytes_per_commit, api=api, log=log)
    return files
