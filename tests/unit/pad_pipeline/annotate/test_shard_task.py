"""The shard task's Ray-free core: lazy decoding, and shard workers that start light."""

import io
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO
from PIL import Image

from pad_pipeline.annotate.config import AnnotateConfig
from pad_pipeline.annotate.shard_task import FailureLog, LazyDecoder, ShardReadError, process_shard
from pad_pipeline.dataset.reader import committed_records
from pad_pipeline.dataset.records import Plan, PlannedInput
from pad_pipeline.dataset.writer import write_plan


def _jpeg(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def test_lazy_decoder_batches_skip_failures_and_keep_only_jpeg_and_size():
    cfg = AnnotateConfig.model_validate({"source": {"kind": "image_dir", "path": "unused"}})
    inputs = [PlannedInput(f"i{n}.jpg", "", f"loc{n}", f"k{n}") for n in range(5)]
    raw = {"loc0": _jpeg(40, 30), "loc1": b"<html>not an image</html>", "loc2": _jpeg(50, 20),
           "loc3": OSError("gone"), "loc4": _jpeg(33, 44)}
    decoder = LazyDecoder(inputs, raw, cfg)
    batches = decoder.batches(2)
    first = next(batches)
    assert [b.shape for b in first] == [(30, 40, 3), (20, 50, 3)]
    assert len(decoder.kept) == 2 and "loc4" in raw  # the rest is not decoded before it is asked for
    rest = list(batches)
    assert [[b.shape for b in batch] for batch in rest] == [[(44, 33, 3)]]
    assert [(inp.image_id, size) for inp, _, size in decoder.kept] == [("i0.jpg", (40, 30)), ("i2.jpg", (50, 20)),
                                                                      ("i4.jpg", (33, 44))]
    assert decoder.kept[0][1] == _jpeg(40, 30)  # a plain JPEG is stored byte-identical
    assert decoder.failures.reasons["i1.jpg"] == "not_an_image"
    assert decoder.failures.reasons["i3.jpg"].startswith("read_error: OSError")
    assert raw == {}  # bytes are released as they are decoded


def test_lazy_decoder_decodes_an_image_listed_twice_both_times():
    cfg = AnnotateConfig.model_validate({"source": {"kind": "image_dir", "path": "unused"}})
    inputs = [PlannedInput("a.jpg", "", "same", "a"), PlannedInput("b.jpg", "", "same", "b")]
    raw = {"same": _jpeg(20, 10)}
    decoder = LazyDecoder(inputs, raw, cfg)
    assert [[b.shape for b in batch] for batch in decoder.batches(1)] == [[(10, 20, 3)], [(10, 20, 3)]]
    assert [inp.image_id for inp, _, _ in decoder.kept] == ["a.jpg", "b.jpg"]
    assert decoder.failures.reasons == {} and raw == {}


def test_shard_worker_modules_import_no_torch():
    # A shard worker unpickles annotator handles, which imports ray_actors: none of it may pull in
    # torch or transformers (seconds of CPU per worker start, taken from the annotators' cores).
    code = ("import sys, pad_pipeline.ray.shard_actor, pad_pipeline.ray.annotator_actor, "
            "pad_pipeline.annotate.shard_task; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_same_failing_image_listed_twice_is_two_failures():
    log = FailureLog()
    for reason in ("empty_file", "empty_file", "too_large: 20000x20000"):
        log.add("a.jpg", reason)
    assert log.reasons == {"a.jpg": "empty_file", "a.jpg#2": "empty_file", "a.jpg#3": "too_large: 20000x20000"}


def test_intake_failures_keep_their_detail():
    cfg = AnnotateConfig.model_validate({"source": {"kind": "image_dir", "path": "unused"},
                                         "intake": {"max_pixels": 100}})
    decoder = LazyDecoder([PlannedInput("big.jpg", "", "big", "big")], {"big": _jpeg(40, 30)}, cfg)
    assert list(decoder.batches(1)) == []
    assert decoder.failures.reasons["big.jpg"] == "too_large: 40x30 pixels > intake.max_pixels"


def _plan(tmp_path, locations):
    plan = Plan(str(tmp_path / "out"), "fp", "h", len(locations), len(locations), 1)
    return write_plan(plan, [PlannedInput(f"{i}.jpg", "", loc, f"k{i}") for i, loc in enumerate(locations)])


def _no_annotations(batches):
    for batch in batches:
        yield [None] * len(batch)


def test_a_shard_none_of_whose_inputs_can_be_read_fails_and_is_not_committed(tmp_path):
    cfg = AnnotateConfig.model_validate({"source": {"kind": "image_dir", "path": str(tmp_path)}})
    plan = _plan(tmp_path, [str(tmp_path / "missing" / f"{i}.jpg") for i in range(3)])
    with pytest.raises(ShardReadError, match="none of its 3 inputs could be read"):
        process_shard(cfg, plan, 0, _no_annotations)
    assert committed_records(plan.out) == {}


def test_bad_images_alone_still_commit_with_every_input_accounted(tmp_path):
    cfg = AnnotateConfig.model_validate({"source": {"kind": "image_dir", "path": str(tmp_path)}})
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    plan = _plan(tmp_path, [str(empty), str(empty), str(tmp_path / "gone.jpg")])
    result = process_shard(cfg, plan, 0, _no_annotations)
    assert result.record.num_samples == 0 and result.record.num_failures == 3
    assert result.record.failure_counts == {"empty_file": 2, "read_error": 1}
