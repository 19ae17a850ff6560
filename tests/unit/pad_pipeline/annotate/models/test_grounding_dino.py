"""Grounding DINO: device preprocessing, prompt chunking, box->tag mapping, outputs, seeds, local loading."""

import numpy as np
import pytest
import torch
from transformers import GroundingDinoForObjectDetection, GroundingDinoImageProcessor

from pad_pipeline.annotate.config import DetectorConfig, ModelsConfig
from pad_pipeline.annotate.models import grounding_dino
from pad_pipeline.annotate.models.base import Detections, images_to_device
from pad_pipeline.annotate.models.detect_batching import Pair, assemble_pass, pair_shape
from pad_pipeline.annotate.models.grounding_dino import boxes_to_pixels, build_grounding_dino
from pad_pipeline.annotate.models.grounding_text import assign_boxes_to_tags, chunk_tags, tag_phrase
from pad_pipeline.annotate.models.tiny import default_tag_words, tiny_bert_tokenizer, tiny_grounding_dino

CPU = torch.device("cpu")
MODELS = ModelsConfig(seed=0)
ALL_BOXES = DetectorConfig(box_threshold=0.0, text_threshold=0.0)


def images(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


@pytest.fixture(scope="module")
def detector():
    return build_grounding_dino(ALL_BOXES, MODELS, CPU)


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_bert_tokenizer()


@pytest.mark.parametrize("processor", [
    GroundingDinoImageProcessor(),  # grounding-dino-tiny: 800 / 1333
    GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96})])
def test_device_preprocessing_matches_image_processor(detector, processor, monkeypatch):
    monkeypatch.setattr(detector, "size", processor.size)
    for im in images((48, 64), (90, 30), (20, 20), (120, 700)):
        ref = processor(images=im, return_tensors="pt")["pixel_values"][0]
        mine = detector.pixel_values(images_to_device([im], CPU)[0])
        assert mine.shape == ref.shape
        torch.testing.assert_close(mine, ref, atol=1e-5, rtol=0)


def test_a_padded_pass_matches_the_transformers_path_on_the_same_padded_inputs(detector):
    """A pair on its canvas and token bucket, among blank rows, gives what transformers gives for the same
    pair padded the same way by the processor and tokenizer, run alone."""
    _, tok, image_processor = tiny_grounding_dino(0)
    for im, tags in zip(images((48, 64), (90, 30)), (["dog", "cat"], ["traffic light", "tree", "sky"]), strict=True):
        chunk = detector.chunks(tags)[0]
        pixels = detector.pixel_values(images_to_device([im], CPU)[0])
        shape = pair_shape(pixels, len(chunk.input_ids), 32, detector.text_limit)
        ref_pixels = image_processor(images=[im], return_tensors="pt")["pixel_values"]
        canvas = torch.zeros(1, 3, shape[0], shape[1])
        canvas[..., :ref_pixels.shape[-2], :ref_pixels.shape[-1]] = ref_pixels
        mask = torch.zeros(1, shape[0], shape[1], dtype=torch.long)
        mask[:, :ref_pixels.shape[-2], :ref_pixels.shape[-1]] = 1
        text = tok([" . ".join(tags) + " ."], padding="max_length", max_length=shape[2], return_tensors="pt")
        assert text["input_ids"][0, :len(chunk.input_ids)].tolist() == chunk.input_ids
        with torch.no_grad():
            ref = detector.model(pixel_values=canvas, pixel_mask=mask, input_ids=text["input_ids"],
                                 attention_mask=text["attention_mask"],
                                 token_type_ids=torch.zeros_like(text["input_ids"]))
        inputs = assemble_pass([Pair(0, chunk, pixels)], shape, 3, detector.blank, detector.pad_id, CPU)
        logits, boxes = detector._forward(inputs)
        assert logits.shape[0] == 1 and inputs.pixel_values.shape[0] == 3
        torch.testing.assert_close(logits[0], ref.logits[0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(boxes[0], ref.pred_boxes[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_an_image_gets_the_same_bits_whatever_its_neighbours(batch_size):
    """Mixed sizes and prompt lengths (issue 12): alone, with others, in any order, any batch_size."""
    det = build_grounding_dino(DetectorConfig(box_threshold=0.0, text_threshold=0.0, batch_size=batch_size),
                               MODELS, CPU)
    ims = images((48, 64), (90, 30), (64, 64), (20, 120), seed=4)
    tags = [["dog", "cat"], ["traffic light", "tree", "sky"], ["dog"], default_tag_words()[:40]]
    together = det.detect(ims, tags)
    alone = [det.detect([im], [t])[0] for im, t in zip(ims, tags, strict=True)]
    reverse = det.detect(ims[::-1], tags[::-1])[::-1]
    for a, b, c in zip(together, alone, reverse, strict=True):
        assert a.labels == b.labels == c.labels
        assert torch.equal(a.boxes, b.boxes) and torch.equal(a.boxes, c.boxes)
        assert torch.equal(a.scores, b.scores) and torch.equal(a.scores, c.scores)


def test_prompt_chunk_encodings_are_reused_and_change_no_output():
    det = build_grounding_dino(ALL_BOXES, MODELS, CPU)  # its own, empty cache
    ims = images((48, 64), (48, 64), (48, 64), seed=3)
    tags = [["dog", "cat"], ["tree"], ["dog", "cat"]]
    first = det.detect(ims, tags)
    stats = det.text_encoder.stats
    assert (stats.rows, stats.encoded) == (3, 2)  # the repeated chunk is encoded once
    again = det.detect(ims, tags)
    assert (stats.rows, stats.encoded) == (6, 2)  # every chunk from the cache
    assert det.stats() == {"text_cache": {"rows": 6, "encoded": 2, "reuse": round(1 - 2 / 6, 4)}, "dropped_tags": 0}
    det.model.model.text_backbone = det.text_encoder.backbone  # the plain transformers path
    try:
        plain = det.detect(ims, tags)
    finally:
        det.model.model.text_backbone = det.text_encoder
    for a, b, p in zip(first, again, plain, strict=True):
        assert a.labels == b.labels == p.labels
        assert torch.equal(a.boxes, b.boxes) and torch.equal(a.scores, b.scores)
        assert torch.equal(a.boxes, p.boxes) and torch.equal(a.scores, p.scores)  # rows encoded alone


def test_chunks_cover_every_tag_once_under_the_token_limit(tokenizer):
    tags = default_tag_words()[:60] + ["traffic light", "xylophonez"]
    limit = 24
    chunks, dropped = chunk_tags(tags, tokenizer, limit)
    assert len(chunks) > 3 and dropped == []
    assert sorted(t for c in chunks for t in c.tags) == sorted(tags)  # each tag in exactly one chunk
    assert [t for c in chunks for t in c.tags] == tags  # best tags stay first
    for c in chunks:
        assert len(c.input_ids) <= limit
        assert c.input_ids == tokenizer(" . ".join(tag_phrase(t) for t in c.tags) + " .")["input_ids"]
        for tag, span in zip(c.tags, c.spans, strict=True):
            assert span and tokenizer.decode([c.input_ids[k] for k in span]) == tag_phrase(tag)
    whole, _ = chunk_tags(tags[:3], tokenizer, 256)
    assert len(whole) == 1


def test_a_tag_longer_than_the_limit_is_dropped_and_counted(tokenizer, detector, monkeypatch):
    long_tag = "x" * 30  # one WordPiece per character past the first: 30 tokens
    chunks, dropped = chunk_tags(["dog", long_tag, "cat", "dog"], tokenizer, 16)
    assert dropped == [long_tag]
    assert [t for c in chunks for t in c.tags] == ["dog", "cat"]
    monkeypatch.setattr(detector, "text_limit", 16)
    before = detector.dropped_tags
    out = detector.detect(images((32, 32)), [[long_tag, "dog"]])
    assert detector.dropped_tags == before + 1 and set(out[0].labels) == {"dog"}
    assert detector.stats()["dropped_tags"] == detector.dropped_tags


def test_tag_phrase_lowercases_and_removes_delimiters():
    assert tag_phrase("  Traffic  Light. ") == "traffic light"
    assert tag_phrase("what?") == "what"


def test_assign_boxes_to_tags_on_constructed_logits():
    # tokens: [CLS] dog . traffic light . [SEP] pad ; tags: dog -> [1], traffic light -> [3, 4]
    spans = [[1], [3, 4]]
    p = torch.full((3, 8), 0.01)
    p[0, 1] = 0.30  # query 0: dog 0.30
    p[0, 4] = 0.28
    p[1, 3], p[1, 4] = 0.10, 0.60  # query 1: traffic light, its best token 0.60
    p[1, 0] = 0.99  # [CLS] is nobody's tag: ignored
    p[2, 1] = 0.22  # query 2: dog 0.22, below the box threshold
    logits = torch.logit(p)
    keep, index, score = assign_boxes_to_tags(logits, spans, box_threshold=0.25, text_threshold=0.2)
    assert keep.tolist() == [True, True, False]
    assert index.tolist() == [0, 1, 0]
    torch.testing.assert_close(score, torch.tensor([0.30, 0.60, 0.22]))
    keep, _, _ = assign_boxes_to_tags(logits, spans, box_threshold=0.2, text_threshold=0.25)
    assert keep.tolist() == [True, True, False]  # the text threshold applies to the chosen tag too
    keep, _, score = assign_boxes_to_tags(logits, [], 0.0, 0.0)
    assert keep.tolist() == [False] * 3


def test_boxes_to_pixels_scales_and_clips():
    cxcywh = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.95, 0.1, 0.3, 0.4]])
    out = boxes_to_pixels(cxcywh, height=100, width=200)
    torch.testing.assert_close(out, torch.tensor([[50.0, 25.0, 150.0, 75.0], [160.0, 0.0, 200.0, 30.0]]))


def test_detect_outputs_one_tag_per_box_in_image_pixels(detector):
    ims = images((48, 64), (90, 30), (20, 20))
    tags = [["dog", "cat"], [], default_tag_words()[:40]]
    out = detector.detect(ims, tags)
    assert len(out) == 3 and all(isinstance(d, Detections) for d in out)
    queries = detector.model.config.num_queries
    n_chunks = len(detector.chunks(tags[2]))
    assert n_chunks > 1  # 40 tags exceed the tiny model's 48-token text limit
    assert len(out[0]) == queries and len(out[1]) == 0 and len(out[2]) == queries * n_chunks
    for d, im, t in zip(out, ims, tags, strict=True):
        assert d.boxes.dtype == torch.float32 and d.boxes.shape == (len(d), 4) and d.scores.shape == (len(d),)
        assert set(d.labels) <= set(t) and len(d.labels) == len(d)
        h, w = im.shape[:2]
        assert (d.boxes >= 0).all() and (d.boxes[:, 0::2] <= w).all() and (d.boxes[:, 1::2] <= h).all()
        assert (d.boxes[:, 2:] >= d.boxes[:, :2]).all()
    strict = build_grounding_dino(DetectorConfig(box_threshold=0.99, text_threshold=0.2), MODELS, CPU)
    kept = strict.detect(ims[:1], tags[:1])[0]
    assert (kept.scores > 0.99).all() and len(kept) < queries


def test_tiny_random_is_deterministic_per_seed(detector):
    ims, tags = images((48, 64)), [["dog", "cat", "tree"]]
    ref = detector.detect(ims, tags)[0]
    same = build_grounding_dino(ALL_BOXES, ModelsConfig(seed=0), CPU).detect(ims, tags)[0]
    other = build_grounding_dino(ALL_BOXES, ModelsConfig(seed=1), CPU).detect(ims, tags)[0]
    assert torch.equal(same.boxes, ref.boxes) and same.labels == ref.labels
    assert not torch.allclose(other.scores, ref.scores)


def test_local_checkpoint_goes_through_from_pretrained_with_revision(tmp_path, monkeypatch, detector):
    model, tok, processor = tiny_grounding_dino(0)
    for part in (model, tok, processor):
        part.save_pretrained(tmp_path)
    calls = []
    original = GroundingDinoForObjectDetection.from_pretrained

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(grounding_dino.GroundingDinoForObjectDetection, "from_pretrained", spy)
    cfg = DetectorConfig(checkpoint=str(tmp_path), revision="v1.0", box_threshold=0.0, text_threshold=0.0)
    loaded = build_grounding_dino(cfg, MODELS, CPU)
    assert calls == [((str(tmp_path),), {"revision": "v1.0"})]
    ims, tags = images((48, 64)), [["dog", "traffic light"]]
    a, b = loaded.detect(ims, tags)[0], detector.detect(ims, tags)[0]
    torch.testing.assert_close(a.boxes, b.boxes)
    torch.testing.assert_close(a.scores, b.scores)
    assert a.labels == b.labels
    assert loaded.provenance() == {"name": "grounding_dino", "checkpoint": str(tmp_path), "revision": "v1.0"}


def test_bfloat16_weights_are_held_and_the_detector_still_runs():
    """`models.weights_dtype: bfloat16` (a configurable GPU path, exercised here on the CPU): the weights are
    bf16, no autocast is needed, and the outputs are float32 boxes inside the image, one tag each."""
    det = build_grounding_dino(ALL_BOXES, ModelsConfig(seed=0, weights_dtype="bfloat16"), CPU)
    assert {p.dtype for p in det.model.parameters()} == {torch.bfloat16}
    ims, tags = images((48, 64), (90, 30)), [["dog", "cat"], ["tree"]]
    for d, im, t in zip(det.detect(ims, tags), ims, tags, strict=True):
        assert d.boxes.dtype == torch.float32 and len(d) == det.model.config.num_queries
        assert torch.isfinite(d.scores).all() and set(d.labels) <= set(t)
        assert (d.boxes[:, 0::2] <= im.shape[1]).all() and (d.boxes[:, 1::2] <= im.shape[0]).all()
