"""The RAM / RAM++ tagger wrapper: builders, preprocessing, batching, output, real-checkpoint path."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from pad_pipeline.annotate.config import ModelsConfig, TaggerConfig
from pad_pipeline.annotate.models.base import images_to_device
from pad_pipeline.annotate.models.ram import tagger as ram_tagger
from pad_pipeline.annotate.models.ram.checkpoint import to_official_state_dict
from pad_pipeline.annotate.models.ram.tiny import tiny_ram, tiny_ram_config
from pad_pipeline.annotate.models.registry import build_model
from pad_pipeline.core.errors import ConfigError

CPU = torch.device("cpu")
MODELS = ModelsConfig(dtype="bfloat16", seed=0)  # bf16 applies on CUDA only; the CPU runs fp32
RNG = np.random.default_rng(0)
SIZES = [(48, 80), (64, 64), (100, 37), (20, 30)]  # down- and up-sampled, square and not
IMAGES = [RNG.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in SIZES]


def _tagger(kind="ram_plus", **cfg):
    cfg = {"image_size": 64, "threshold": 0.0, "max_tags": 5, **cfg}
    return build_model("tagger", TaggerConfig(kind=kind, **cfg), MODELS, CPU)


@pytest.mark.parametrize("kind", ["ram", "ram_plus"])
def test_an_image_gets_the_same_logits_bits_whatever_its_batch(kind):
    tagger = _tagger(kind, batch_size=3)  # 4 images: a full batch, then one image and two zero rows
    batched = tagger.logits(IMAGES)
    singles = torch.cat([tagger.logits([im]) for im in IMAGES])
    shifted = torch.cat([tagger.logits(IMAGES[:2]), tagger.logits(IMAGES[2:])])
    assert batched.shape == (4, len(tagger.vocab))
    assert torch.equal(batched, singles) and torch.equal(batched, shifted)
    assert batched.std() > 0.1  # the random model does separate tags


@pytest.mark.parametrize("kind", ["ram", "ram_plus"])
def test_tags_are_the_best_scores_above_threshold_in_order(kind):
    tagger = _tagger(kind, max_tags=4)
    results = tagger.tag(IMAGES[:2])
    probs = torch.sigmoid(tagger.logits(IMAGES[:2]))
    for result, p in zip(results, probs, strict=True):
        top = torch.argsort(p, descending=True)[:4].tolist()
        assert result.tags == [tagger.vocab.tags[i] for i in top]
        assert result.scores == pytest.approx(p[top].tolist(), abs=1e-6)
    assert tagger.tag([]) == []


def test_vocabulary_thresholds_and_deny_list_from_the_manifest(tmp_path):
    tags = ["dog", "cat", "tree", "sky", "car", "boat"]
    (tmp_path / "tags.txt").write_text("\n".join(tags) + "\n")
    (tmp_path / "thr.txt").write_text("0.0\n0.0\n1.0\n0.0\n0.0\n0.0\n")
    tagger = _tagger("ram", tag_list=str(tmp_path / "tags.txt"), tag_thresholds=str(tmp_path / "thr.txt"),
                     threshold=None, deny_list=["Sky"], max_tags=10)
    assert tagger.vocab.tags == tags
    for result in tagger.tag(IMAGES):
        assert sorted(result.tags) == ["boat", "car", "cat", "dog"]  # tree's threshold 1.0, sky denied
        assert result.scores == sorted(result.scores, reverse=True)


def test_preprocessing_matches_the_official_pil_transform():
    tagger = _tagger("ram", image_size=64)
    imagenet = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    official = transforms.Compose([transforms.Resize((64, 64)), transforms.ToTensor(), imagenet])
    ours = tagger.pixel_values(images_to_device(IMAGES, CPU))
    reference = torch.stack([official(Image.fromarray(im)) for im in IMAGES])
    assert ours.shape == reference.shape == (4, 3, 64, 64)
    # PIL and torchvision round some resampled pixels to the neighbouring uint8 level: at most one level.
    one_level = 1 / 255 / 0.224
    diff = (ours - reference).abs()
    assert diff.max() <= one_level * 1.01
    assert diff.mean() < one_level * 0.1


def test_tiny_random_defaults_to_the_packaged_vocabulary_and_reports_provenance():
    tagger = _tagger("ram")
    assert len(tagger.vocab) > 100 and "dog" in tagger.vocab.tags
    assert tagger.provenance() == {"name": "ram", "checkpoint": "tiny-random", "revision": None,
                                   "sha256": None, "tag_list": None, "tag_thresholds": None}


def test_real_checkpoint_path_loads_strictly_and_records_its_hash(tmp_path, monkeypatch):
    # The builder's checkpoint path with a tiny architecture in place of Swin-L (which is too big for a
    # unit test): tag list -> strict load of an official-layout file -> same logits as the source model.
    tags = ["dog", "cat", "tree"]
    (tmp_path / "tags.txt").write_text("\n".join(tags))
    source = tiny_ram(3, 384, True, seed=7)
    torch.save({"model": to_official_state_dict(source.state_dict())}, tmp_path / "ram_plus.pth")
    monkeypatch.setattr(ram_tagger, "ram_plus_swin_large_config",
                        lambda n, size: tiny_ram_config(n, size, True))
    cfg = TaggerConfig(kind="ram_plus", checkpoint=str(tmp_path / "ram_plus.pth"),
                       tag_list=str(tmp_path / "tags.txt"), image_size=384)
    tagger = build_model("tagger", cfg, MODELS, CPU)
    pixels = tagger.pixel_values(images_to_device(IMAGES[:2], CPU))
    with torch.no_grad():
        assert torch.equal(tagger.model(pixels), source(pixels))
    provenance = tagger.provenance()
    assert len(provenance["sha256"]) == 64  # and the strict load's report: every tensor loaded, none skipped
    assert (provenance["loaded_keys"], provenance["skipped_keys"]) == (len(source.state_dict()), 0)
    assert tagger.stats() == {}


def test_real_checkpoints_need_their_tag_list_and_384_px(tmp_path):
    with pytest.raises(ConfigError, match=r"models\.tagger\.tag_list.*ram_tag_list\.txt"):
        build_model("tagger", TaggerConfig(kind="ram", checkpoint=str(tmp_path / "ram.pth")), MODELS, CPU)
    (tmp_path / "tags.txt").write_text("dog\n")
    cfg = TaggerConfig(kind="ram_plus", checkpoint=str(tmp_path / "ram.pth"),
                       tag_list=str(tmp_path / "tags.txt"), image_size=224)
    with pytest.raises(ConfigError, match=r"models\.tagger\.image_size.*384"):
        build_model("tagger", cfg, MODELS, CPU)
