"""The shard task's Ray-free core: lazy decoding, and shard workers that start light."""

import io
import subprocess
import sys

import numpy as np
from helpers import REPO
from PIL import Image

from pad_pipeline.annotate.config import AnnotateConfig
from pad_pipeline.annotate.plan import PlannedInput
from pad_pipeline.annotate.shard_task import LazyDecoder


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
    assert decoder.failures["i1.jpg"] == "not_an_image"
    assert decoder.failures["i3.jpg"].startswith("read_error: OSError")
    assert raw == {}  # bytes are released as they are decoded


def test_lazy_decoder_decodes_an_image_listed_twice_both_times():
    cfg = AnnotateConfig.model_validate({"source": {"kind": "image_dir", "path": "unused"}})
    inputs = [PlannedInput("a.jpg", "", "same", "a"), PlannedInput("b.jpg", "", "same", "b")]
    raw = {"same": _jpeg(20, 10)}
    decoder = LazyDecoder(inputs, raw, cfg)
    assert [[b.shape for b in batch] for batch in decoder.batches(1)] == [[(10, 20, 3)], [(10, 20, 3)]]
    assert [inp.image_id for inp, _, _ in decoder.kept] == ["a.jpg", "b.jpg"]
    assert decoder.failures == {} and raw == {}


def test_shard_worker_modules_import_no_torch():
    # A shard worker unpickles annotator handles, which imports ray_actors: none of it may pull in
    # torch or transformers (seconds of CPU per worker start, taken from the annotators' cores).
    code = ("import sys, pad_pipeline.ray.shard_actor, pad_pipeline.ray.annotator_actor, pad_pipeline.annotate.shard_task; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
