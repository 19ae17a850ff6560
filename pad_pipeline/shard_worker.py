"""One shard, start to commit: read its planned inputs, decode, annotate, encode, write, commit.

Ray-free: the model chain is reached through `annotate_batches`, an iterator transformer
(batches of images in, lists of `ImageAnnotation` out, same order) so the caller can pipeline
requests to a remote actor while this task decodes the next batch. Every planned input ends as a
sample or a named failure in the shard record.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from pad_pipeline.annotate_config import AnnotateConfig
from pad_pipeline.annotation import ImageAnnotation
from pad_pipeline.intake import DecodedImage, IntakeFailure, decode_image
from pad_pipeline.plan import Plan, PlannedInput
from pad_pipeline.shards import Sample, write_shard
from pad_pipeline.sources import fetch_bytes

AnnotateBatches = Callable[[Iterable[list[np.ndarray]]], Iterator[list[ImageAnnotation]]]


def _batches(items: list[tuple[PlannedInput, DecodedImage]], size: int) -> Iterator[list[np.ndarray]]:
    for i in range(0, len(items), size):
        yield [decoded.pixels for _, decoded in items[i:i + size]]


def sample_record(inp: PlannedInput, decoded: DecodedImage, ann: ImageAnnotation) -> dict[str, Any]:
    h, w = decoded.pixels.shape[:2]
    return {"image_id": inp.image_id, "size": [int(w), int(h)], "caption": inp.caption,
            "tags": ann.tags, "tag_scores": ann.tag_scores, "labels": ann.labels}


def process_shard(cfg: AnnotateConfig, plan: Plan, index: int, annotate_batches: AnnotateBatches,
                  info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Annotate and commit shard `index` of `plan`; returns the shard record."""
    t_start, cpu_start = time.perf_counter(), time.process_time()
    inputs = plan.shard_inputs(index)
    raw = fetch_bytes(inp.location for inp in inputs)
    failures: dict[str, str] = {}
    decoded: list[tuple[PlannedInput, DecodedImage]] = []
    for inp in inputs:
        data = raw.get(inp.location)
        if isinstance(data, Exception) or data is None:
            failures[inp.image_id] = f"read_error: {type(data).__name__}: {data}"[:300]
            continue
        result = decode_image(data, cfg.intake, cfg.output.jpeg_quality)
        if isinstance(result, IntakeFailure):
            failures[inp.image_id] = result.reason
        else:
            decoded.append((inp, result))
    del raw
    t_decoded = time.perf_counter()
    annotations: list[ImageAnnotation] = []
    for batch_result in annotate_batches(_batches(decoded, cfg.runner.batch_size)):
        annotations.extend(batch_result)
    if len(annotations) != len(decoded):
        raise RuntimeError(f"shard {index}: {len(annotations)} annotations for {len(decoded)} images")
    t_annotated = time.perf_counter()
    samples: list[Sample] = []
    empty_masks = 0
    for (inp, dec), ann in zip(decoded, annotations):
        if ann.failure:
            failures[inp.image_id] = ann.failure
            continue
        empty_masks += ann.empty_masks
        samples.append(Sample(inp.key, dec.jpeg, sample_record(inp, dec, ann)))
    reasons = Counter(r.split(":", 1)[0] for r in failures.values())
    record_info = {
        "config_hash": plan.config_hash,
        "source_fingerprint": plan.source_fingerprint,
        "num_inputs": len(inputs),
        "empty_masks_dropped": empty_masks,
        "failure_counts": dict(sorted(reasons.items())),
        **(info or {}),
    }
    record_info["seconds"] = {"decode": round(t_decoded - t_start, 3),
                              "annotate": round(t_annotated - t_decoded, 3)}
    pause = cfg.runner.fault_pause_before_commit_s
    record = write_shard(plan.out, index, samples, failures, record_info,
                         before_commit=(lambda: time.sleep(pause)) if pause else None)
    # CPU seconds of this task (fetch, decode, tar, write), for the driver's accounting only.
    return {**record, "task_cpu_seconds": time.process_time() - cpu_start}
