"""The shard plan: fixed before any work, so every shard is a unit that can be rerun on its own.

`OUT/plan.json` holds the source fingerprint, shard size and count, and the hash of the config that
decides the output (source, intake, models; not the runner). `OUT/plan/pad-NNNNNN.jsonl` lists each
shard's inputs (image id, caption, location, key), so shard tasks never re-list the corpus. Running the
same command again resumes; a different source, shard size or annotation config is refused.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from typing import Any, Callable, TextIO

import yaml

from pad_pipeline.annotate.config import AnnotateConfig
from pad_pipeline.annotate.sources import SourceItem, list_items, probe_source
from pad_pipeline.core import storage
from pad_pipeline.core.config import config_hash
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.keys import unique_keys
from pad_pipeline.dataset.layout import BuildLayout
from pad_pipeline.dataset.reader import committed_records, load_plan
from pad_pipeline.dataset.records import Plan, PlannedInput
from pad_pipeline.dataset.writer import write_plan


def annotation_config_hash(cfg: AnnotateConfig) -> str:
    """Hash of what decides a shard's bytes. The runner, the output path and the detector's text cache
    (a reused encoding equals a fresh one, as after a change of batch size) are left out, so they can
    change when a build is resumed."""
    exclude = {"runner": True, "output": {"path"}, "models": {"detector": {"text_cache_size"}}}
    return config_hash(cfg, exclude=exclude)  # type: ignore[arg-type]


def source_fingerprint(kind: str, items: list[SourceItem]) -> str:
    h = hashlib.sha256(kind.encode())
    for it in items:
        h.update(json.dumps([it.image_id, it.caption, it.location]).encode())
        h.update(b"\n")
    return h.hexdigest()


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
            if k.startswith(decides) and k != "models.detector.text_cache_size" and then.get(k) != now.get(k)]


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
    changed = changed_fields(plan.out, cfg)
    detail = f"; changed: {'; '.join(changed)}" if changed else ""
    if not committed_records(plan.out):
        print(f"[pad] {plan.out}: re-planning; the old plan ({problem}) has no committed shard{detail}",
              file=stream, flush=True)
        return False
    raise PadError(f"{existing.out}: this build was planned with {problem}{detail}; restore the original "
                   "settings (see OUT/config.yaml) or use a new --out")


def make_or_resume_plan(cfg: AnnotateConfig, out: str, validate: Callable[[Plan], None] | None = None,
                        stream: TextIO | None = None) -> Plan:
    """Plan the build at `out`, or check that the existing plan matches and reuse it.

    `validate(plan)` runs before anything is written (e.g. a shard selection checked against the plan);
    a source none of whose probed locations can be read is refused before anything is written too.
    """
    t0, stream = time.time(), stream or sys.stderr
    print(f"[pad] planning {out} from {cfg.source.kind} source {cfg.source.path} ...", file=stream, flush=True)
    items = list_items(cfg.source)
    if not items:
        raise PadError(f"{cfg.source.path}: the source has no images")
    probe_source(cfg.source, items)
    size = cfg.output.shard_size
    plan = Plan(out, source_fingerprint(cfg.source.kind, items), annotation_config_hash(cfg), size,
                len(items), (len(items) + size - 1) // size)
    if validate is not None:
        validate(plan)
    layout = BuildLayout(out)
    if storage.exists(layout.plan) and _check_resume(cfg, load_plan(out), plan, stream):
        if all(storage.exists(layout.plan_inputs(i)) for i in range(plan.num_shards)):
            return plan
    write_plan(plan, [PlannedInput(it.image_id, it.caption, it.location, key)
                      for it, key in zip(items, unique_keys(it.image_id for it in items), strict=True)])
    print(f"[pad] planned {plan.num_items} images in {plan.num_shards} shards ({time.time() - t0:.1f}s)",
          file=stream, flush=True)
    return plan


