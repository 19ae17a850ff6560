"""One shard, start to commit: read its planned inputs, decode, annotate, encode, write, commit.

Ray-free: the model chain is reached through `annotate_batches`, an iterator transformer
(batches of images in, lists of `ImageAnnotation` out, same order) so the caller can pipeline
requests to a remote actor while this task decodes the next batch. Every planned input ends as a
sample or a named failure in the shard record.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from pad_pipeline.annotate.config import AnnotateConfig
from pad_pipeline.annotate.intake import IntakeFailure, decode_image
from pad_pipeline.annotate.results import ImageAnnotation
from pad_pipeline.annotate.sources import fetch_bytes
from pad_pipeline.annotate.sources.base import InputRefused
from pad_pipeline.annotate.sources.guard import refusals
from pad_pipeline.dataset.reader import read_shard_inputs
from pad_pipeline.dataset.records import Label, Plan, PlannedInput, Sample, SampleRecord, ShardRecord
from pad_pipeline.dataset.writer import plan_identity, write_shard


@dataclass(frozen=True)
class ShardResult:
    """What a shard task returns to the driver: the committed record, and the CPU seconds the task spent
    (fetch, decode, tar, write) for the driver's accounting only."""

    record: ShardRecord
    task_cpu_seconds: float


AnnotateBatches = Callable[[Iterable[list[np.ndarray]]], Iterator[list[ImageAnnotation]]]


READ_ERROR = "read_error"


class ShardReadError(RuntimeError):
    """Not one input of a shard could be read: the source is unreachable, not the images bad. The shard
    fails (and is retried or recorded) instead of being committed as a shard of read errors."""


class FailureLog:
    """image_id -> reason for the inputs that did not become samples. An image listed twice in a shard
    is two inputs: a repeated id is recorded as `image_id#2`, `#3`..., so every input is counted."""

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}
        self.read_errors = 0

    def add(self, image_id: str, reason: str) -> None:
        name, n = image_id, 1
        while name in self.reasons:
            n += 1
            name = f"{image_id}#{n}"
        self.reasons[name] = reason
        self.read_errors += reason.startswith(READ_ERROR)


class LazyDecoder:
    """Decodes a shard's inputs batch by batch, as the annotator asks for them.

    Only the batches in flight hold pixels; what is kept per image is its stored JPEG and size, so a
    shard task's memory is its compressed bytes plus a few batches, whatever the shard size.
    """

    def __init__(self, inputs: list[PlannedInput], raw: dict[str, bytes | Exception], cfg: AnnotateConfig):
        self.inputs, self.raw, self.cfg = inputs, raw, cfg
        # A location listed twice (the same image under two ids) keeps its bytes until its last use.
        self.uses_left = Counter(inp.location for inp in inputs)
        self.failures = FailureLog()
        self.kept: list[tuple[PlannedInput, bytes, tuple[int, int]]] = []  # (input, jpeg, (w, h))
        self.decode_seconds = 0.0

    def _decode(self, inp: PlannedInput) -> np.ndarray | None:
        self.uses_left[inp.location] -= 1
        data = self.raw.get(inp.location) if self.uses_left[inp.location] else self.raw.pop(inp.location, None)
        if isinstance(data, InputRefused):  # never read: a named failure, not a read error
            self.failures.add(inp.image_id, data.reason)
            return None
        if isinstance(data, Exception) or data is None:
            self.failures.add(inp.image_id, f"{READ_ERROR}: {type(data).__name__}: {data}"[:300])
            return None
        result = decode_image(data, self.cfg.intake, self.cfg.output.jpeg_quality)
        if isinstance(result, IntakeFailure):
            self.failures.add(inp.image_id, f"{result.reason}: {result.detail}" if result.detail else result.reason)
            return None
        h, w = result.pixels.shape[:2]
        self.kept.append((inp, result.jpeg, (int(w), int(h))))
        return result.pixels

    def batches(self, size: int) -> Iterator[list[np.ndarray]]:
        batch: list[np.ndarray] = []
        for inp in self.inputs:
            t0 = time.perf_counter()
            pixels = self._decode(inp)
            self.decode_seconds += time.perf_counter() - t0
            if pixels is not None:
                batch.append(pixels)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch


def fetch_inputs(cfg: AnnotateConfig, inputs: list[PlannedInput]) -> dict[str, bytes | Exception]:
    """The bytes of each input's location; inputs that must not be read (`sources.guard.refusals`) get an
    `InputRefused` instead, and no file is read past `intake.max_bytes` + 1 bytes."""
    refused = refusals(cfg.source, inputs)
    raw = fetch_bytes((inp.location for inp in inputs if inp.location not in refused), cfg.intake.max_bytes)
    raw.update({loc: InputRefused(reason) for loc, reason in refused.items()})
    return raw


def warm_up(cfg: AnnotateConfig) -> None:
    """Decode, encode and index one tiny image in memory (nothing is written): the first use of PIL's
    JPEG plugin and of pyarrow (which imports pandas) costs ~0.5 s of CPU, paid here at start-up rather
    than inside the first shard, where it would compete with the annotators."""
    import io

    from PIL import Image

    from pad_pipeline.dataset.writer import build_index, build_tar

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (127, 127, 127)).save(buf, format="JPEG")
    decoded = decode_image(buf.getvalue(), cfg.intake, cfg.output.jpeg_quality)
    if not isinstance(decoded, IntakeFailure):
        sample = Sample("warm", decoded.jpeg, SampleRecord("warm", [64, 64], "", [], []))
        build_tar([sample])
        build_index([sample], {"warm-failure": "decode_error"})


def sample_record(inp: PlannedInput, size: tuple[int, int], ann: ImageAnnotation) -> SampleRecord:
    labels = [lb if isinstance(lb, Label) else Label(**lb) for lb in ann.labels]
    return SampleRecord(inp.image_id, list(size), inp.caption, ann.tags, labels, ann.tag_scores)


def process_shard(cfg: AnnotateConfig, plan: Plan, index: int, annotate_batches: AnnotateBatches,
                  info: dict[str, Any] | None = None, pause_before_commit_s: float = 0.0) -> ShardResult:
    """Annotate and commit shard `index` of `plan`; returns its record and the task's CPU seconds
    (`pause_before_commit_s`: a test hook, `pad_pipeline.core.hooks`)."""
    t_start, cpu_start = time.perf_counter(), time.process_time()
    inputs = read_shard_inputs(plan, index)
    decoder = LazyDecoder(inputs, fetch_inputs(cfg, inputs), cfg)
    t_fetched = time.perf_counter()
    annotations: list[ImageAnnotation] = []
    for batch_result in annotate_batches(decoder.batches(cfg.runner.batch_size)):
        annotations.extend(batch_result)
    if len(annotations) != len(decoder.kept):
        raise RuntimeError(f"shard {index}: {len(annotations)} annotations for {len(decoder.kept)} images")
    t_annotated = time.perf_counter()
    if inputs and decoder.failures.read_errors == len(inputs):
        first = next(iter(decoder.failures.reasons.values()))
        raise ShardReadError(f"shard {index}: none of its {len(inputs)} inputs could be read ({first})")
    failures = decoder.failures
    samples: list[Sample] = []
    empty_masks = 0
    for (inp, jpeg, size), ann in zip(decoder.kept, annotations, strict=True):
        if ann.failure:
            failures.add(inp.image_id, ann.failure)
            continue
        empty_masks += ann.empty_masks
        samples.append(Sample(inp.key, jpeg, sample_record(inp, size, ann)))
    reasons = Counter(r.split(":", 1)[0] for r in failures.reasons.values())
    record_info = {
        **plan_identity(plan, index, inputs),  # what makes the record count for this plan only
        "empty_masks_dropped": empty_masks,
        "failure_counts": dict(sorted(reasons.items())),
        **(info or {}),
    }
    record_info["seconds"] = {"fetch": round(t_fetched - t_start, 3), "decode": round(decoder.decode_seconds, 3),
                              "annotate_and_decode": round(t_annotated - t_fetched, 3)}
    pause = pause_before_commit_s
    record = write_shard(plan.out, index, samples, failures.reasons, record_info,
                         before_commit=(lambda: time.sleep(pause)) if pause else None)
    return ShardResult(record, time.process_time() - cpu_start)
