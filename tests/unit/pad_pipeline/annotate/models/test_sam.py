"""SAM segmenter: device preprocessing and masks vs SamProcessor, shapes, empty images, batching, seeds."""

import numpy as np
import pytest
import torch
from transformers import SamImageProcessor, SamModel, SamProcessor

from pad_pipeline.annotate.config import ModelsConfig, SegmenterConfig
from pad_pipeline.annotate.models import sam
from pad_pipeline.annotate.models.base import MaskResult, images_to_device
from pad_pipeline.annotate.models.sam import build_sam, masks_to_image
from pad_pipeline.annotate.models.tiny import tiny_sam, tiny_sam_image_processor
from pad_pipeline.core.errors import PadError

CPU = torch.device("cpu")
MODELS = ModelsConfig(seed=0)
SHAPES = ((40, 60), (77, 31), (20, 20))
BOXES = [torch.tensor([[1.0, 2.0, 30.0, 20.0], [10.0, 10.0, 50.0, 39.0]]),
         torch.tensor([[0.0, 5.0, 30.0, 70.0]]),
         torch.tensor([[0.0, 0.0, 19.0, 19.0], [3.0, 4.0, 9.0, 12.0], [5.0, 5.0, 15.0, 15.0]])]


def images(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


@pytest.fixture(scope="module")
def segmenter():
    return build_sam(SegmenterConfig(batch_size=3), MODELS, CPU)


@pytest.mark.parametrize("processor", [SamImageProcessor(), tiny_sam_image_processor()])  # sam-vit-*: 1024
def test_device_preprocessing_matches_sam_image_processor(segmenter, processor, monkeypatch):
    monkeypatch.setattr(segmenter, "longest", processor.size.longest_edge)
    monkeypatch.setattr(segmenter, "padded", (processor.pad_size.height, processor.pad_size.width))
    for im in images(*SHAPES, (300, 500)):
        ref = processor(images=im, return_tensors="pt")["pixel_values"][0]
        mine = segmenter.pixel_values(images_to_device([im], CPU)[0])
        assert mine.shape == ref.shape
        torch.testing.assert_close(mine, ref, atol=1e-5, rtol=0)


def test_masks_match_the_transformers_processor_path(segmenter):
    """SamProcessor (box scaling) + SamModel + post_process_masks give the same masks and IoUs."""
    processor = SamProcessor(image_processor=tiny_sam_image_processor())
    ours = segmenter.segment(images(*SHAPES), BOXES)
    for im, boxes, mine in zip(images(*SHAPES), BOXES, ours, strict=True):
        inputs = processor(images=im, input_boxes=[[boxes.tolist()]], return_tensors="pt")
        with torch.no_grad():
            out = segmenter.model(pixel_values=inputs["pixel_values"],
                                  input_boxes=inputs["input_boxes"].float(), multimask_output=False)
        ref = processor.image_processor.post_process_masks(out.pred_masks, inputs["original_sizes"],
                                                           inputs["reshaped_input_sizes"])[0][:, 0]
        assert torch.equal(mine.masks, ref)
        torch.testing.assert_close(mine.scores, out.iou_scores[0, :, 0], atol=1e-5, rtol=1e-4)


def test_masks_are_bool_at_the_original_size_and_empty_images_skip_the_models(segmenter):
    ims = images(*SHAPES)
    encoded = []
    hook = segmenter.model.vision_encoder.register_forward_hook(lambda m, i, o: encoded.append(i[0].shape[0]))
    try:
        out = segmenter.segment(ims, [BOXES[0], torch.zeros(0, 4), BOXES[2]])
    finally:
        hook.remove()
    # one encoder batch of batch_size (3) rows: the two images with boxes and one zero row (pp.fill_batch)
    assert encoded == [3]
    assert all(isinstance(r, MaskResult) for r in out)
    for r, im, n in zip(out, ims, (2, 0, 3), strict=True):
        assert r.masks.dtype == torch.bool and r.masks.shape == (n, *im.shape[:2])
        assert r.scores.shape == (n,) and r.scores.dtype == torch.float32
    assert out[0].masks.any() and not out[0].masks.all()


def test_masks_to_image_upsamples_crops_then_resizes():
    low = torch.full((1, 4, 4), -1.0)
    low[0, :2, :2] = 1.0  # top-left quarter of the padded frame
    # padded 16x16, resized image 8x16 (bottom half was padding), original 4x8
    mask = masks_to_image(low, (16, 16), (8, 16), (4, 8), threshold=0.0)
    assert mask.shape == (1, 4, 8) and mask.dtype == torch.bool
    assert mask[0, :, :4].all() and not mask[0, :, 4:].any()


def test_an_image_gets_the_same_bits_whatever_its_batch(segmenter):
    ims = images(*SHAPES)
    batched = segmenter.segment(ims, BOXES)
    singles = [segmenter.segment([im], [b])[0] for im, b in zip(ims, BOXES, strict=True)]
    for a, b in zip(batched, singles, strict=True):
        assert torch.equal(a.masks, b.masks) and torch.equal(a.scores, b.scores)


def test_tiny_random_is_deterministic_per_seed(segmenter):
    ims, boxes = images(SHAPES[0]), BOXES[:1]
    ref = segmenter.segment(ims, boxes)[0]
    same = build_sam(SegmenterConfig(), ModelsConfig(seed=0), CPU).segment(ims, boxes)[0]
    other = build_sam(SegmenterConfig(), ModelsConfig(seed=1), CPU).segment(ims, boxes)[0]
    assert torch.equal(same.masks, ref.masks) and torch.equal(same.scores, ref.scores)
    assert not torch.equal(other.scores, ref.scores)


def test_local_checkpoint_goes_through_from_pretrained_with_revision(tmp_path, monkeypatch, segmenter):
    model, processor = tiny_sam(0)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    calls = []
    original = SamModel.from_pretrained

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(sam.SamModel, "from_pretrained", spy)
    loaded = build_sam(SegmenterConfig(checkpoint=str(tmp_path), revision="main"), MODELS, CPU)
    assert calls == [((str(tmp_path),), {"revision": "main"})]
    ims = images(*SHAPES[:2])
    for a, b in zip(loaded.segment(ims, BOXES[:2]), segmenter.segment(ims, BOXES[:2]), strict=True):
        assert torch.equal(a.masks, b.masks)
        torch.testing.assert_close(a.scores, b.scores)
    assert loaded.provenance() == {"name": "sam", "checkpoint": str(tmp_path), "revision": "main"}


def test_processor_and_model_sizes_must_agree(tmp_path):
    model, _ = tiny_sam(0)
    model.save_pretrained(tmp_path)
    SamImageProcessor().save_pretrained(tmp_path)  # pads to 1024, the tiny model takes 64
    with pytest.raises(PadError, match="models.segmenter.checkpoint.*1024"):
        build_sam(SegmenterConfig(checkpoint=str(tmp_path)), MODELS, CPU)


def test_bfloat16_weights_hold_the_image_encoder_only():
    """`models.weights_dtype: bfloat16`: the ViT encoder in bf16 (its FLOPs), prompts and masks in float32
    (bf16 would round box corners); masks still bool at the image's size."""
    seg = build_sam(SegmenterConfig(batch_size=2), ModelsConfig(seed=0, weights_dtype="bfloat16"), CPU)
    assert {p.dtype for p in seg.model.vision_encoder.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in seg.model.prompt_encoder.parameters()} == {torch.float32}
    ims = images((40, 60), (64, 30))
    out = seg.segment(ims, [torch.tensor([[2.0, 3.0, 30.0, 20.0]]), torch.tensor([[1.0, 1.0, 20.0, 50.0]] * 2)])
    for r, im, n in zip(out, ims, (1, 2), strict=True):
        assert r.masks.dtype == torch.bool and r.masks.shape == (n, *im.shape[:2]) and torch.isfinite(r.scores).all()
