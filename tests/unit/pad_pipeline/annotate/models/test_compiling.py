"""`models.compile`: the wrappers compile their image encoders in place (off by default), output unchanged."""

import numpy as np
import pytest
import torch

from pad_pipeline.annotate.config import ModelsConfig, SegmenterConfig, TaggerConfig
from pad_pipeline.annotate.models import compiling
from pad_pipeline.annotate.models.registry import build_model

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def eager_backend(monkeypatch):
    monkeypatch.setattr(compiling, "BACKEND", "eager")  # Dynamo's tracing; inductor's CPU codegen takes minutes


@pytest.mark.parametrize("role, section, encoder", [
    ("segmenter", SegmenterConfig(kind="sam"), "vision_encoder"),
    ("segmenter", SegmenterConfig(kind="sam2"), "vision_encoder"),
    ("tagger", TaggerConfig(kind="ram_plus", threshold=0.0), "image_encoder"),
])
def test_only_the_image_encoder_is_compiled_and_only_when_asked(role, section, encoder):
    plain = build_model(role, section, ModelsConfig(), CPU).model
    compiled = build_model(role, section, ModelsConfig(compile=True), CPU).model
    assert getattr(plain, encoder)._compiled_call_impl is None
    assert getattr(compiled, encoder)._compiled_call_impl is not None
    others = [m for name, m in compiled.named_children() if name != encoder]
    assert others and all(m._compiled_call_impl is None for m in others)
    assert list(compiled.state_dict()) == list(plain.state_dict())  # compiled in place: names unchanged


def test_a_compiled_tagger_gives_the_same_tags():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 60, 3), dtype=np.uint8) for _ in range(2)]
    cfg = TaggerConfig(kind="ram_plus", threshold=0.0, max_tags=5)
    plain = build_model("tagger", cfg, ModelsConfig(), CPU)
    compiled = build_model("tagger", cfg, ModelsConfig(compile=True), CPU)
    torch.testing.assert_close(compiled.logits(images), plain.logits(images), atol=1e-5, rtol=1e-5)
    assert [t.tags for t in compiled.tag(images)] == [t.tags for t in plain.tag(images)]
