"""SAM 2 segmenter: device preprocessing and masks vs Sam2Processor + Sam2Model, shapes, empty images,
batching, local checkpoints, the processor/model size check and the compile hook."""

import numpy as np
import pytest
import torch
from transformers import Sam2ImageProcessor, Sam2Model, Sam2Processor

from pad_pipeline.annotate.config import ModelsConfig, SegmenterConfig
from pad_pipeline.annotate.models import compiling, sam2
from pad_pipeline.annotate.models.base import MaskResult, images_to_device
from pad_pipeline.annotate.models.sam2 import build_sam2, low_res_masks_to_image
from pad_pipeline.annotate.models.tiny import tiny_sam2, tiny_sam2_image_processor
from pad_pipeline.core.errors import PadError

CPU = torch.device("cpu")
MODELS = ModelsConfig(seed=0)
CFG = SegmenterConfig(kind="sam2", batch_size=3)
SHAPES = ((40, 60), (77, 31), (20, 20))
BOXES = [torch.tensor([[1.0, 2.0, 30.0, 20.0], [10.0, 10.0, 50.0, 39.0]]),
         torch.tensor([[0.0, 5.0, 30.0, 70.0]]),
         torch.tensor([[0.0, 0.0, 19.0, 19.0], [3.0, 4.0, 9.0, 12.0], [5.0, 5.0, 15.0, 15.0]])]


def images(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


@pytest.fixture(scope="module")
def segmenter():
    return build_sam2(CFG, MODELS, CPU)


@pytest.mark.parametrize("processor", [Sam2ImageProcessor(), tiny_sam2_image_processor()])  # hub: 1024 x 1024
def test_device_preprocessing_matches_sam2_image_processor(segmenter, processor, monkeypatch):
    monkeypatch.setattr(segmenter, "size", (processor.size.height, processor.size.width))
    for im in images(*SHAPES, (300, 500)):
        ref = processor(images=im, return_tensors="pt")["pixel_values"][0]
        mine = segmenter.pixel_values(images_to_device([im], CPU)[0])
        assert mine.shape == ref.shape
        torch.testing.assert_close(mine, ref, atol=1e-5, rtol=0)


def test_masks_match_the_transformers_sam2_processor_path(segmenter):
    """Sam2Processor (box scaling) + Sam2Model + post_process_masks give the same masks and IoUs."""
    processor = Sam2Processor(image_processor=tiny_sam2_image_processor())
    ours = segmenter.segment(images(*SHAPES), BOXES)
    for im, boxes, mine in zip(images(*SHAPES), BOXES, ours, strict=True):
        inputs = processor(images=im, input_boxes=[boxes.tolist()], return_tensors="pt")
        with torch.no_grad():
            out = segmenter.model(pixel_values=inputs["pixel_values"], input_boxes=inputs["input_boxes"],
                                  multimask_output=False)
        ref = processor.post_process_masks(out.pred_masks, inputs["original_sizes"])[0][:, 0]
        assert mine.masks.any() and torch.equal(mine.masks, ref)
        torch.testing.assert_close(mine.scores, out.iou_scores[0, :, 0], atol=1e-5, rtol=1e-4)


def test_masks_are_bool_at_the_original_size_and_empty_images_skip_the_encoder(segmenter):
    ims = images(*SHAPES)
    encoded = []
    hook = segmenter.model.vision_encoder.register_forward_hook(lambda m, i, o: encoded.append(i[0].shape[0]))
    try:
        out = segmenter.segment(ims, [BOXES[0], torch.zeros(0, 4), BOXES[2]])
    finally:
        hook.remove()
    # one encoder call of exactly batch_size rows (2 images with boxes, the rest blank fill)
    assert encoded == [segmenter.cfg.batch_size]
    alone = segmenter.segment([ims[2]], [BOXES[2]])[0]
    assert torch.equal(alone.masks, out[2].masks)  # an image's masks do not depend on its batch
    for r, im, n in zip(out, ims, (2, 0, 3), strict=True):
        assert isinstance(r, MaskResult) and r.masks.dtype == torch.bool and r.masks.shape == (n, *im.shape[:2])
        assert r.scores.shape == (n,) and r.scores.dtype == torch.float32


def test_low_res_masks_are_resized_straight_to_the_image():
    low = torch.full((1, 4, 4), -1.0)
    low[0, :, :2] = 1.0  # left half of the square frame
    mask = low_res_masks_to_image(low, (6, 8), threshold=0.0)
    assert mask.shape == (1, 6, 8) and mask.dtype == torch.bool
    assert mask[0, :, :4].all() and not mask[0, :, 4:].any()


def test_batch_of_three_equals_three_singles(segmenter):
    ims = images(*SHAPES)
    singles = [segmenter.segment([im], [b])[0] for im, b in zip(ims, BOXES, strict=True)]
    for a, b in zip(segmenter.segment(ims, BOXES), singles, strict=True):
        assert (a.masks != b.masks).float().mean() < 1e-3
        torch.testing.assert_close(a.scores, b.scores, atol=1e-5, rtol=1e-4)


def test_local_checkpoint_goes_through_from_pretrained_with_revision(tmp_path, monkeypatch, segmenter):
    model, processor = tiny_sam2(0)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    calls = []
    original = Sam2Model.from_pretrained

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(sam2.Sam2Model, "from_pretrained", spy)
    loaded = build_sam2(SegmenterConfig(kind="sam2", checkpoint=str(tmp_path), revision="main"), MODELS, CPU)
    assert calls == [((str(tmp_path),), {"revision": "main"})]
    ims = images(*SHAPES[:2])
    for a, b in zip(loaded.segment(ims, BOXES[:2]), segmenter.segment(ims, BOXES[:2]), strict=True):
        assert torch.equal(a.masks, b.masks)
    assert loaded.provenance() == {"name": "sam2", "checkpoint": str(tmp_path), "revision": "main"}


def test_processor_and_model_sizes_must_agree(tmp_path):
    model, _ = tiny_sam2(0)
    model.save_pretrained(tmp_path)
    Sam2ImageProcessor().save_pretrained(tmp_path)  # resizes to 1024, the tiny model takes 64
    with pytest.raises(PadError, match="models.segmenter.checkpoint.*1024"):
        build_sam2(SegmenterConfig(kind="sam2", checkpoint=str(tmp_path)), MODELS, CPU)


def test_compile_compiles_the_image_encoder_in_place_and_keeps_the_masks(segmenter, monkeypatch):
    monkeypatch.setattr(compiling, "BACKEND", "eager")  # Dynamo's tracing; inductor's CPU codegen takes minutes
    compiled = build_sam2(CFG, ModelsConfig(seed=0, compile=True), CPU)
    assert compiled.model.vision_encoder._compiled_call_impl is not None
    assert segmenter.model.vision_encoder._compiled_call_impl is None
    assert set(compiled.model.state_dict()) == set(segmenter.model.state_dict())  # names unchanged
    ims = images(*SHAPES[:2])
    for a, b in zip(compiled.segment(ims, BOXES[:2]), segmenter.segment(ims, BOXES[:2]), strict=True):
        assert torch.equal(a.masks, b.masks)
        torch.testing.assert_close(a.scores, b.scores)
