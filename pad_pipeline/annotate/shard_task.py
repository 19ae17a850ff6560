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

from pad_pipeline.annotate.config import AnnotateConfig
from pad_pipeline.annotate.intake import IntakeFailure, decode_image
from pad_pipeline.annotate.plan import Plan, PlannedInput
from pad_pipeline.annotate.results import ImageAnnotation
from pad_pipeline.annotate.sources import fetch_bytes
from pad_pipeline.dataset.writer import Sample, write_shard

AnnotateBatches = Callable[[Iterable[list[np.ndarray]]], Iterator[list[ImageAnnotation]]]


class LazyDecoder:
    """Decodes a shard's inputs batch by batch, as the annotator asks for them.

    Only the batches in flight hold pixels; what is kept per image is its stored JPEG and size, so a
    shard task's memory is its compressed bytes plus a few batches, whatever the shard size.
    """

    def __init__(self, inputs: list[PlannedInput], raw: dict[str, bytes | Exception], cfg: AnnotateConfig):
        self.inputs, self.raw, self.cfg = inputs, raw, cfg
        # A location listed twice (the same image under two ids) keeps its bytes until its last use.
        self.uses_left = Counter(inp.location for inp in inputs)
        self.failures: dict[str, str] = {}
        self.kept: list[tuple[PlannedInput, bytes, tuple[int, int]]] = []  # (input, jpeg, (w, h))
        self.decode_seconds = 0.0

    def _decode(self, inp: PlannedInput) -> np.ndarray | None:
        self.uses_left[inp.location] -= 1
        data = self.raw.get(inp.location) if self.uses_left[inp.location] else self.raw.pop(inp.location, None)
        if isinstance(data, Exception) or data is None:
            self.failures[inp.image_id] = f"read_error: {type(data).__name__}: {data}"[:300]
            return None
        result = decode_image(data, self.cfg.intake, self.cfg.output.jpeg_quality)
        if isinstance(result, IntakeFailure):
            self.failures[inp.image_id] = result.reason
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
        sample = Sample("warm", decoded.jpeg, {"image_id": "warm"})
        build_tar([sample])
        build_index([sample], {"warm-failure": "decode_error"})


def sample_record(inp: PlannedInput, size: tuple[int, int], ann: ImageAnnotation) -> dict[str, Any]:
    return {"image_id": inp.image_id, "size": list(size), "caption": inp.caption,
            "tags": ann.tags, "tag_scores": ann.tag_scores, "labels": ann.labels}


def process_shard(cfg: AnnotateConfig, plan: Plan, index: int, annotate_batches: AnnotateBatches,
                  info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Annotate and commit shard `index` of `plan`; returns the shard record."""
    t_start, cpu_start = time.perf_counter(), time.process_time()
    inputs = plan.shard_inputs(index)
    decoder = LazyDecoder(inputs, fetch_bytes(inp.location for inp in inputs), cfg)
    t_fetched = time.perf_counter()
    annotations: list[ImageAnnotation] = []
    for batch_result in annotate_batches(decoder.batches(cfg.runner.batch_size)):
        annotations.extend(batch_result)
    if len(annotations) != len(decoder.kept):
        raise RuntimeError(f"shard {index}: {len(annotations)} annotations for {len(decoder.kept)} images")
    t_annotated = time.perf_counter()
    failures = decoder.failures
    samples: list[Sample] = []
    empty_masks = 0
    for (inp, jpeg, size), ann in zip(decoder.kept, annotations):
        if ann.failure:
            failures[inp.image_id] = ann.failure
            continue
        empty_masks += ann.empty_masks
        samples.append(Sample(inp.key, jpeg, sample_record(inp, size, ann)))
    reasons = Counter(r.split(":", 1)[0] for r in failures.values())
    record_info = {
        "config_hash": plan.config_hash,
        "source_fingerprint": plan.source_fingerprint,
        "num_inputs": len(inputs),
        "empty_masks_dropped": empty_masks,
        "failure_counts": dict(sorted(reasons.items())),
        **(info or {}),
    }
    record_info["seconds"] = {"fetch": round(t_fetched - t_start, 3), "decode": round(decoder.decode_seconds, 3),
                              "annotate_and_decode": round(t_annotated - t_fetched, 3)}
    pause = cfg.runner.fault_pause_before_commit_s
    record = write_shard(plan.out, index, samples, failures, record_info,
                         before_commit=(lambda: time.sleep(pause)) if pause else None)
    # CPU seconds of this task (fetch, decode, tar, write), for the driver's accounting only.
    return {**record, "task_cpu_seconds": time.process_time() - cpu_start}
