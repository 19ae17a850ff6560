"""The shard plan: fixed before any work, so every shard is a unit that can be rerun on its own.

`OUT/plan.json` holds the source fingerprint, shard size and count, and the hash of the config that
decides the output (source, intake, models; not the runner). `OUT/plan/pad-NNNNNN.jsonl` lists each
shard's inputs (image id, caption, location, key), so shard tasks never re-list the corpus. Running the
same command again resumes; a different source, shard size or annotation config is refused. A source
described by files (tars: `source_files`) is not listed again on resume while their sizes and stamps
match `OUT/source_index.json`; shards never split a compressed tar (`plan_source.shard_starts`).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import replace
from typing import Any, Callable, TextIO

import yaml

from pad_pipeline.annotate import chain_version
from pad_pipeline.annotate.config import AnnotateConfig
from pad_pipeline.annotate.plan_source import record_source_files, shard_starts, source_unchanged
from pad_pipeline.annotate.sources import SourceItem, list_items, probe_source, source_files
from pad_pipeline.annotate.sources.base import without_range
from pad_pipeline.core import storage
from pad_pipeline.core.config import config_hash
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.keys import unique_keys
from pad_pipeline.dataset.layout import BuildLayout
from pad_pipeline.dataset.reader import committed_records, load_plan
from pad_pipeline.dataset.records import Plan, PlannedInput
from pad_pipeline.dataset.source_index import SourceFile
from pad_pipeline.dataset.writer import write_plan

# Fields under `models` that change speed, not the output; outside the hash and the changed-field list.
SPEED_KNOBS = ("models.detector.text_cache_size", "models.compile", "models.compile_detector", "models.compile_mode")


def annotation_config_hash(cfg: AnnotateConfig) -> str:
    """Hash of what decides a shard's bytes. The runner, the output path, the detector's text cache
    (a reused encoding equals a fresh one, as after a change of batch size), `models.compile` (the
    same model, compiled: equal up to float rounding) and `publish` (what the dataset card says) are
    left out, so they can change when a build is resumed. The chain's output version is folded in."""
    return chain_version.versioned(config_hash(cfg, exclude=_HASH_EXCLUDE))  # type: ignore[arg-type]


_HASH_EXCLUDE = {"runner": True, "publish": True, "output": {"path": True},
                 "models": {"detector": {"text_cache_size": True}, "compile": True, "compile_detector": True,
                            "compile_mode": True}}


def source_fingerprint(kind: str, items: list[SourceItem], ranges: bool = True) -> str:
    """Hash of the listing. `ranges=False` leaves tar members' byte ranges out: the fingerprint of a plan
    made before tar locations had ranges, so that such a plan still resumes (as it was planned)."""
    h = hashlib.sha256(kind.encode())
    for it in items:
        h.update(json.dumps([it.image_id, it.caption, it.location if ranges else without_range(it.location)]).encode())
        h.update(b"\n")
    return h.hexdigest()


def _as_existing(existing: Plan, plan: Plan, kind: str, items: list[SourceItem]) -> Plan:
    """`plan` with the fingerprint and shard count of `existing` when both list the same source (also a
    plan from before byte ranges, or one with shards cut across compressed tars): resumed as planned."""
    if existing.source_fingerprint in (plan.source_fingerprint, source_fingerprint(kind, items, ranges=False)):
        return replace(plan, source_fingerprint=existing.source_fingerprint, num_shards=existing.num_shards,
                       plan_id=existing.plan_id, shard_digests=existing.shard_digests)
    return plan


def _resume_unlisted(cfg: AnnotateConfig, out: str, files: list[SourceFile] | None,
                     validate: Callable[[Plan], None] | None, stream: TextIO) -> Plan | None:
    """The existing plan at `out` when its source files are unchanged (sizes and stamps; no tar is opened)
    and nothing else that decides the build changed; the usual refusal when something did and shards are
    committed; None when the source must be listed (changed files, no stored index, a re-plan)."""
    layout = BuildLayout(out)
    if files is None or not storage.exists(layout.plan):
        return None
    existing = load_plan(out)
    if not source_unchanged(out, existing.source_fingerprint, files, stream):
        return None
    again = replace(existing, config_hash=annotation_config_hash(cfg), shard_size=cfg.output.shard_size)
    if resume_problem(existing, again) is not None:
        if committed_records(out):
            _check_resume(cfg, existing, again, stream)  # raises, naming the changed fields
        return None
    if not all(storage.exists(layout.plan_inputs(i)) for i in range(existing.num_shards)):
        return None
    if validate is not None:
        validate(existing)
    print(f"[pad] {out}: source unchanged since planning ({len(files)} files, same sizes and stamps); "
          "not listed again", file=stream, flush=True)
    return existing


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for k, v in data.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def changed_fields(out: str, cfg: AnnotateConfig) -> list[str]:
    """`field: then -> now` for each field that decides the build and differs from `OUT/config.yaml`."""
    url = BuildLayout(out).config
    try:
        then = _flatten(yaml.safe_load(storage.read_bytes(url)) or {})
    except (FileNotFoundError, yaml.YAMLError):
        return []
    now = _flatten(cfg.model_dump(mode="json"))
    decides = ("source.", "output.shard_size", "output.jpeg_quality", "intake.", "models.")
    return [f"{k}: {then.get(k)!r} then, {now.get(k)!r} now" for k in sorted(set(then) | set(now))
            if k.startswith(decides) and k not in SPEED_KNOBS and then.get(k) != now.get(k)]


def resume_problem(existing: Plan, plan: Plan) -> str | None:
    """Why the plan at `existing.out` cannot be resumed with `plan`, or None when it can."""
    if existing.source_fingerprint != plan.source_fingerprint:
        return f"a different source ({existing.num_items} items then, {plan.num_items} now)"
    if existing.shard_size != plan.shard_size:
        return f"output.shard_size={existing.shard_size}, not {plan.shard_size}"
    if existing.config_hash != plan.config_hash:
        return f"another annotation config (hash {existing.config_hash} != {plan.config_hash})"
    return None


def _check_resume(cfg: AnnotateConfig, existing: Plan, plan: Plan, stream: TextIO) -> bool:
    """True when the existing plan is reused; False when it may be replaced (nothing was committed
    under it); a one-line PadError naming the changed fields otherwise."""
    problem = resume_problem(existing, plan)
    if problem is None:
        return True
    if committed_records(plan.out):
        chain_version.refuse_old_chain(existing.out, existing.config_hash, config_hash(
            cfg, exclude=chain_version.version_1_exclude(_HASH_EXCLUDE)))  # type: ignore[arg-type]
    changed = changed_fields(plan.out, cfg)
    detail = f"; changed: {'; '.join(changed)}" if changed else ""
    if not committed_records(plan.out):
        print(f"[pad] {plan.out}: re-planning; the old plan ({problem}) has no committed shard{detail}",
              file=stream, flush=True)
        return False
    raise PadError(f"{existing.out}: this build was planned with {problem}{detail}; restore the original "
                   "settings (see OUT/config.yaml) or use a new --out")


def check_output_folder(out: str) -> None:
    """A build goes into a folder: an existing file (or a file on the way) is refused in one line."""
    fs, path = storage.filesystem(out)
    parts = path.rstrip("/").split("/")
    for n in range(len(parts), 0, -1):
        prefix = "/".join(parts[:n]) or "/"
        if fs.exists(prefix):
            if not fs.isdir(prefix):
                raise PadError(f"--out / output.path {out!r}: {prefix} is a file, not a folder; choose a folder")
            return


def make_or_resume_plan(cfg: AnnotateConfig, out: str, validate: Callable[[Plan], None] | None = None,
                        stream: TextIO | None = None) -> Plan:
    """Plan the build at `out`, or check that the existing plan matches and reuse it.

    `validate(plan)` runs before anything is written (e.g. a shard selection checked against the plan);
    a source none of whose probed locations can be read is refused before anything is written too.
    """
    t0, stream = time.time(), stream or sys.stderr
    check_output_folder(out)
    print(f"[pad] planning {out} from {cfg.source.kind} source {cfg.source.path} ...", file=stream, flush=True)
    files = source_files(cfg.source)  # before listing: a change made while listing shows on the next run
    resumed = _resume_unlisted(cfg, out, files, validate, stream)
    if resumed is not None:
        return resumed
    items = list_items(cfg.source)
    if not items:
        raise PadError(f"{cfg.source.path}: the source has no images")
    probe_source(cfg.source, items)
    starts = shard_starts(items, cfg.output.shard_size)
    plan = Plan(out, source_fingerprint(cfg.source.kind, items), annotation_config_hash(cfg),
                cfg.output.shard_size, len(items), len(starts))
    layout = BuildLayout(out)
    existing = load_plan(out) if storage.exists(layout.plan) else None
    candidate = _as_existing(existing, plan, cfg.source.kind, items) if existing is not None else plan
    if validate is not None:
        validate(candidate)
    if existing is not None and _check_resume(cfg, existing, candidate, stream):
        if all(storage.exists(layout.plan_inputs(i)) for i in range(candidate.num_shards)):
            record_source_files(out, candidate.source_fingerprint, files)
            return candidate
    if validate is not None and candidate is not plan:
        validate(plan)
    plan = write_plan(plan, [PlannedInput(it.image_id, it.caption, it.location, key, it.refused)
                             for it, key in zip(items, unique_keys(it.image_id for it in items), strict=True)],
                      starts)
    record_source_files(out, plan.source_fingerprint, files)
    print(f"[pad] planned {plan.num_items} images in {plan.num_shards} shards ({time.time() - t0:.1f}s)",
          file=stream, flush=True)
    return plan


