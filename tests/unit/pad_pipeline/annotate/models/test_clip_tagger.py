"""CLIP tagger: device preprocessing vs CLIPImageProcessor, tag selection, batching, seeds, local loading."""

import numpy as np
import pytest
import torch
from transformers import CLIPImageProcessor, CLIPModel

from pad_pipeline.annotate.config import ModelsConfig, TaggerConfig
from pad_pipeline.annotate.models import clip_tagger
from pad_pipeline.annotate.models.base import TagResult, images_to_device
from pad_pipeline.annotate.models.clip_tagger import ClipTagger, build_clip_tagger
from pad_pipeline.annotate.models.tiny import tiny_clip
from pad_pipeline.annotate.models.vocabulary import packaged_tags
from pad_pipeline.core.errors import ConfigError, PadError

CPU = torch.device("cpu")
MODELS = ModelsConfig(dtype="bfloat16", seed=0)  # bf16 autocast applies on CUDA only: CPU runs fp32


def images(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


@pytest.fixture(scope="module")
def tagger():
    return build_clip_tagger(TaggerConfig(threshold=0.0, max_tags=5, batch_size=3), MODELS, CPU)


@pytest.mark.parametrize("processor", [CLIPImageProcessor(),  # openai/clip-vit-* geometry: 224, bicubic
                                       CLIPImageProcessor(size={"shortest_edge": 32},
                                                          crop_size={"height": 32, "width": 32})])
def test_device_preprocessing_matches_clip_image_processor(processor):
    model, tokenizer, _ = tiny_clip(0)
    tg = ClipTagger(model, tokenizer, processor, ["dog"], TaggerConfig(), CPU, "float32", None)
    for im in images((48, 80), (123, 37), (20, 20), (300, 200)):
        ref = processor(images=im, return_tensors="pt")["pixel_values"]
        mine = tg.pixel_values(images_to_device([im], CPU))
        assert mine.shape == ref.shape
        torch.testing.assert_close(mine, ref, atol=1e-5, rtol=0)


def test_tag_outputs_sorted_limited_and_deny_list(tagger):
    ims = images((40, 60), (32, 32))
    results = tagger.tag(ims)
    assert len(results) == 2
    for r in results:
        assert isinstance(r, TagResult) and len(r.tags) == 5 and len(r.scores) == 5
        assert r.scores == sorted(r.scores, reverse=True)
        assert set(r.tags) <= set(tagger.vocab.tags) and all(0.0 < s <= 1.0 for s in r.scores)
    top = results[0].tags[0]
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    cfg = TaggerConfig(threshold=0.0, max_tags=5, deny_list=[top.upper()])
    denied = ClipTagger(tagger.model, tagger.tokenizer, processor, tagger.vocab.tags, cfg, CPU, "float32", None)
    again = denied.tag(ims[:1])[0]
    assert top not in again.tags and again.tags[:4] == results[0].tags[1:]


def test_probabilities_are_a_softmax_over_the_vocabulary(tagger):
    probs = tagger.probabilities(images((40, 60)))
    assert probs.shape == (1, len(tagger.vocab))
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(1))
    assert tagger.text_embeds.shape[0] == len(tagger.vocab)
    torch.testing.assert_close(tagger.text_embeds.norm(dim=1), torch.ones(len(tagger.vocab)))


def test_an_image_scores_the_same_bits_whatever_its_batch(tagger):
    ims = images((40, 60), (77, 31), (32, 32), (50, 50))
    batched = tagger.probabilities(ims)  # batch_size 3: a full batch, then one image and two zero rows
    singles = torch.cat([tagger.probabilities([im]) for im in ims])
    shifted = torch.cat([tagger.probabilities(ims[:1]), tagger.probabilities(ims[1:])])
    assert torch.equal(batched, singles) and torch.equal(batched, shifted)


def test_tiny_random_is_deterministic_per_seed(tagger):
    cfg = TaggerConfig(threshold=0.0, max_tags=5, batch_size=3)  # the fixture's batch size: same bits
    same = build_clip_tagger(cfg, ModelsConfig(seed=0), CPU)
    other = build_clip_tagger(cfg, ModelsConfig(seed=1), CPU)
    ims = images((40, 60))
    torch.testing.assert_close(same.probabilities(ims), tagger.probabilities(ims), atol=0, rtol=0)
    assert not torch.allclose(other.text_embeds, tagger.text_embeds)


def test_tag_list_file_and_missing_file(tmp_path):
    path = tmp_path / "tags.txt"
    path.write_text("zebra\nkite\nzebra\n\n")
    tg = build_clip_tagger(TaggerConfig(tag_list=str(path), threshold=0.0), MODELS, CPU)
    assert tg.vocab.tags == ["zebra", "kite"]  # duplicates once, trailing blank lines dropped
    assert sorted(tg.tag(images((32, 32)))[0].tags) == ["kite", "zebra"]
    with pytest.raises(ConfigError, match="models.tagger.tag_list"):
        build_clip_tagger(TaggerConfig(tag_list=str(tmp_path / "nope.txt")), MODELS, CPU)
    (tmp_path / "gap.txt").write_text("zebra\n\nkite\n")
    with pytest.raises(ConfigError, match="models.tagger.tag_list.*line 2 is blank"):
        build_clip_tagger(TaggerConfig(tag_list=str(tmp_path / "gap.txt")), MODELS, CPU)
    bad = tmp_path / "thr.txt"
    bad.write_text("0.5\n")
    with pytest.raises(ConfigError, match="tag_thresholds.*1 thresholds for 2 tags"):
        build_clip_tagger(TaggerConfig(tag_list=str(path), tag_thresholds=str(bad)), MODELS, CPU)


def test_tag_list_and_thresholds_from_an_fsspec_url():
    import fsspec

    with fsspec.open("memory://clip-tags/tags.txt", "w") as f:
        f.write("zebra\nkite\n")
    with fsspec.open("memory://clip-tags/thr.txt", "w") as f:
        f.write("0.0\n1.0\n")
    cfg = TaggerConfig(tag_list="memory://clip-tags/tags.txt", tag_thresholds="memory://clip-tags/thr.txt")
    tg = build_clip_tagger(cfg, MODELS, CPU)
    assert tg.vocab.tags == ["zebra", "kite"] and tg.vocab.thresholds.tolist() == [0.0, 1.0]
    assert tg.tag(images((32, 32)))[0].tags == ["zebra"]  # a softmax probability is never > 1


def test_default_vocabulary_and_threshold(tagger):
    tg = build_clip_tagger(TaggerConfig(), MODELS, CPU)
    assert tg.vocab.tags == packaged_tags() and 150 <= len(set(tg.vocab.tags)) == len(tg.vocab) <= 300
    expected = clip_tagger.DEFAULT_THRESHOLD_X_UNIFORM / len(tg.vocab)
    torch.testing.assert_close(tg.vocab.thresholds, torch.full((len(tg.vocab),), expected))


def test_local_checkpoint_goes_through_from_pretrained_with_revision(tmp_path, monkeypatch, tagger):
    model, tokenizer, processor = tiny_clip(0)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    calls = []
    original = CLIPModel.from_pretrained

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(clip_tagger.CLIPModel, "from_pretrained", spy)
    cfg = TaggerConfig(checkpoint=str(tmp_path), revision="main", threshold=0.0, max_tags=5)
    loaded = build_clip_tagger(cfg, MODELS, CPU)
    assert calls == [((str(tmp_path),), {"revision": "main"})]
    ims = images((40, 60), (77, 31))
    torch.testing.assert_close(loaded.probabilities(ims), tagger.probabilities(ims), atol=1e-6, rtol=1e-5)
    assert loaded.provenance() == {"name": "clip", "checkpoint": str(tmp_path), "revision": "main"}


def test_unloadable_checkpoint_is_a_pad_error_naming_the_field(tmp_path):
    with pytest.raises(PadError, match="models.tagger.checkpoint"):
        build_clip_tagger(TaggerConfig(checkpoint=str(tmp_path / "missing")), MODELS, CPU)
