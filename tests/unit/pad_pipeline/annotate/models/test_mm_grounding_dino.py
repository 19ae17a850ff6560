"""MM Grounding DINO through the Grounding DINO wrapper: boxes vs transformers' processor path, the registry
kind, provenance, seeds and local checkpoints."""

import numpy as np
import pytest
import torch
from transformers import MMGroundingDinoForObjectDetection

from pad_pipeline.annotate.config import DetectorConfig, ModelsConfig
from pad_pipeline.annotate.models import mm_grounding_dino
from pad_pipeline.annotate.models.detect_batching import pair_shape
from pad_pipeline.annotate.models.grounding_dino import boxes_to_pixels
from pad_pipeline.annotate.models.grounding_text import assign_boxes_to_tags
from pad_pipeline.annotate.models.mm_grounding_dino import build_mm_grounding_dino
from pad_pipeline.annotate.models.registry import build_model
from pad_pipeline.annotate.models.tiny import tiny_mm_grounding_dino

CPU = torch.device("cpu")
MODELS = ModelsConfig(seed=0)
ALL_BOXES = DetectorConfig(kind="mm_grounding_dino", box_threshold=0.0, text_threshold=0.0)


def images(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


@pytest.fixture(scope="module")
def detector():
    return build_model("detector", ALL_BOXES, MODELS, CPU)  # through the registry, by its kind


def test_boxes_match_the_transformers_processor_path(detector):
    """GroundingDinoImageProcessor + tokenizer + MMGroundingDinoForObjectDetection on the pair padded as PAD
    pads it (canvas and prompt-length buckets), decoded with PAD's box->tag rule."""
    assert isinstance(detector.model, MMGroundingDinoForObjectDetection)
    _, tokenizer, image_processor = tiny_mm_grounding_dino(0)
    for im, tags in zip(images((48, 64), (90, 30)), (["dog", "cat"], ["traffic light", "tree", "sky"]), strict=True):
        ours = detector.detect([im], [tags])[0]
        chunk = detector.chunks(tags)[0]
        pixels = image_processor(images=im, return_tensors="pt")["pixel_values"]
        height, width, tokens = pair_shape(pixels[0], len(chunk.input_ids), detector.cfg.canvas_multiple,
                                           detector.text_limit)
        canvas = torch.zeros(1, 3, height, width)
        canvas[..., :pixels.shape[-2], :pixels.shape[-1]] = pixels
        mask = torch.zeros(1, height, width, dtype=torch.long)
        mask[:, :pixels.shape[-2], :pixels.shape[-1]] = 1
        text = tokenizer(" . ".join(tags) + " .", padding="max_length", max_length=tokens, return_tensors="pt")
        assert text["input_ids"][0, :len(chunk.input_ids)].tolist() == chunk.input_ids
        with torch.no_grad():
            ids = text["input_ids"]
            out = detector.model(pixel_values=canvas, pixel_mask=mask, input_ids=ids,
                                 attention_mask=text["attention_mask"], token_type_ids=torch.zeros_like(ids))
        keep, index, score = assign_boxes_to_tags(out.logits[0], chunk.spans, 0.0, 0.0)
        assert len(ours) == int(keep.sum()) == detector.model.config.num_queries
        assert ours.labels == [chunk.tags[j] for j in index[keep].tolist()]
        torch.testing.assert_close(ours.scores, score[keep], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(ours.boxes, boxes_to_pixels(out.pred_boxes[0][keep], *im.shape[:2]),
                                   atol=1e-3, rtol=1e-4)


def test_tiny_random_is_deterministic_per_seed_and_named_in_the_provenance(detector):
    ims, tags = images((48, 64)), [["dog", "cat", "tree"]]
    a, b = detector.detect(ims, tags)[0], build_mm_grounding_dino(ALL_BOXES, MODELS, CPU).detect(ims, tags)[0]
    other = build_mm_grounding_dino(ALL_BOXES, ModelsConfig(seed=1), CPU).detect(ims, tags)[0]
    assert torch.equal(a.boxes, b.boxes) and a.labels == b.labels
    assert not torch.allclose(other.scores, a.scores)
    assert detector.provenance() == {"name": "mm_grounding_dino", "checkpoint": "tiny-random", "revision": None}


def test_local_checkpoint_goes_through_from_pretrained_with_revision(tmp_path, monkeypatch, detector):
    model, tokenizer, processor = tiny_mm_grounding_dino(0)
    for part in (model, tokenizer, processor):
        part.save_pretrained(tmp_path)
    calls = []
    original = MMGroundingDinoForObjectDetection.from_pretrained

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(mm_grounding_dino.MMGroundingDinoForObjectDetection, "from_pretrained", spy)
    cfg = ALL_BOXES.model_copy(update={"checkpoint": str(tmp_path), "revision": "v1"})
    loaded = build_mm_grounding_dino(cfg, MODELS, CPU)
    assert calls == [((str(tmp_path),), {"revision": "v1"})]
    ims, tags = images((48, 64)), [["dog", "traffic light"]]
    a, b = loaded.detect(ims, tags)[0], detector.detect(ims, tags)[0]
    torch.testing.assert_close(a.boxes, b.boxes)
    assert a.labels == b.labels
    assert loaded.provenance() == {"name": "mm_grounding_dino", "checkpoint": str(tmp_path), "revision": "v1"}
