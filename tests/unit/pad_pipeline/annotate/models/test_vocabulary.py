"""The taggers' shared vocabulary: tag list (any fsspec URL), per-tag thresholds, global override,
deny list and the one choice of tags (CLIP and RAM alike)."""

import fsspec
import pytest
import torch

from pad_pipeline.annotate.config import TaggerConfig
from pad_pipeline.annotate.models.base import TagResult
from pad_pipeline.annotate.models.ram.tagger import DEFAULT_THRESHOLD
from pad_pipeline.annotate.models.vocabulary import (
    Vocabulary,
    build_vocabulary,
    packaged_tags,
    read_tag_list,
    select_tags,
)
from pad_pipeline.core.errors import ConfigError

TAGS = ["dog", "cat", "Sky", "tree", "car"]


def _vocabulary(tags, cfg):
    return build_vocabulary(tags, cfg, DEFAULT_THRESHOLD)


def _files(tmp_path, thresholds):
    tags = tmp_path / "tags.txt"
    tags.write_text("\n".join(TAGS) + "\n")
    thr = tmp_path / "thr.txt"
    thr.write_text("\n".join(str(t) for t in thresholds) + "\n")
    return str(tags), str(thr)


def test_per_class_thresholds_decide_each_tag(tmp_path):
    tags_path, thr_path = _files(tmp_path, [0.9, 0.5, 0.65, 0.3, 0.99])
    vocab = _vocabulary(read_tag_list(tags_path), TaggerConfig(kind="ram", tag_thresholds=thr_path))
    scores = torch.tensor([[0.8, 0.6, 0.7, 0.3, 0.995]])
    [result] = select_tags(scores, vocab, max_tags=10)
    # dog 0.8 < 0.9 out; tree 0.3 is not > 0.3; the rest pass, best first.
    assert result.tags == ["car", "Sky", "cat"]
    assert result.scores == pytest.approx([0.995, 0.7, 0.6])


def test_global_threshold_overrides_the_file_and_default_is_official(tmp_path):
    tags_path, thr_path = _files(tmp_path, [0.9, 0.9, 0.9, 0.9, 0.9])
    cfg = TaggerConfig(kind="ram", tag_thresholds=thr_path, threshold=0.5)
    vocab = _vocabulary(TAGS, cfg)
    assert vocab.thresholds.tolist() == [0.5] * 5
    [result] = select_tags(torch.tensor([[0.4, 0.6, 0.55, 0.1, 0.51]]), vocab, max_tags=10)
    assert result.tags == ["cat", "Sky", "car"]
    default = _vocabulary(TAGS, TaggerConfig(kind="ram"))
    assert default.thresholds.tolist() == pytest.approx([DEFAULT_THRESHOLD] * 5)


def test_deny_list_is_case_insensitive_and_ignores_unknown_names():
    cfg = TaggerConfig(kind="ram", threshold=0.0, deny_list=["sky", " CAR ", "zebra"])
    vocab = _vocabulary(TAGS, cfg)
    [result] = select_tags(torch.tensor([[0.2, 0.3, 0.9, 0.4, 0.95]]), vocab, max_tags=10)
    assert result.tags == ["tree", "cat", "dog"]


def test_order_ties_max_tags_and_duplicates_per_image():
    vocab = _vocabulary(["a", "b", "a", "c"], TaggerConfig(kind="ram", threshold=0.1))
    scores = torch.tensor([[0.5, 0.5, 0.9, 0.05],
                           [0.2, 0.3, 0.4, 0.6]])
    first, second = select_tags(scores, vocab, max_tags=2)
    assert first.tags == ["a", "b"]  # "a" (index 2) first; its duplicate at index 0 is dropped
    assert first.scores == pytest.approx([0.9, 0.5])
    assert second.tags == ["c", "a"]  # cut at max_tags
    assert select_tags(torch.zeros(0, 4), vocab, 2) == []


def test_threshold_file_must_fit_the_tag_list(tmp_path):
    tags_path, thr_path = _files(tmp_path, [0.5, 0.5])
    with pytest.raises(ConfigError, match=r"models\.tagger\.tag_thresholds.*2 thresholds for 5 tags"):
        _vocabulary(TAGS, TaggerConfig(kind="ram", tag_thresholds=thr_path))
    (tmp_path / "bad.txt").write_text("0.5\n0.5\nhigh\n0.5\n0.5\n")
    with pytest.raises(ConfigError, match=r"line 3: 'high' is not a number"):
        _vocabulary(TAGS, TaggerConfig(kind="ram", tag_thresholds=str(tmp_path / "bad.txt")))


def test_tag_list_errors_name_the_field_and_line(tmp_path):
    with pytest.raises(ConfigError, match=r"models\.tagger\.tag_list.*cannot read"):
        read_tag_list(str(tmp_path / "missing.txt"))
    (tmp_path / "gap.txt").write_text("dog\n\ncat\n")
    with pytest.raises(ConfigError, match="line 2 is blank"):
        read_tag_list(str(tmp_path / "gap.txt"))
    (tmp_path / "ok.txt").write_text("3D CG rendering\r\nabacus\n\n")
    assert read_tag_list(str(tmp_path / "ok.txt")) == ["3D CG rendering", "abacus"]


def test_threshold_deny_and_max_tags_on_one_row():
    vocab = Vocabulary(["sky", "dog", "cat", "tree", "car"], torch.full((5,), 0.1), torch.zeros(5, dtype=torch.bool))
    probs = torch.tensor([[0.05, 0.4, 0.3, 0.2, 0.05]])
    assert select_tags(probs, vocab, 10) == [TagResult(["dog", "cat", "tree"], pytest.approx([0.4, 0.3, 0.2]))]
    assert select_tags(probs, vocab, 2)[0].tags == ["dog", "cat"]
    denied = Vocabulary(vocab.tags, vocab.thresholds, torch.tensor([False, False, True, False, False]))
    assert select_tags(probs, denied, 10)[0].tags == ["dog", "tree"]
    per_tag = Vocabulary(vocab.tags, torch.tensor([0.0, 0.5, 0.1, 0.1, 0.0]), vocab.denied)
    assert select_tags(probs, per_tag, 10)[0].tags == ["cat", "tree", "sky", "car"]


def test_default_threshold_is_the_callers():
    assert build_vocabulary(TAGS, TaggerConfig(), 0.25).thresholds.tolist() == [0.25] * 5


def test_fsspec_urls_are_read_like_local_files():
    with fsspec.open("memory://vocabulary/tags.txt", "w") as f:
        f.write("dog\ncat\n")
    with fsspec.open("memory://vocabulary/thr.txt", "w") as f:
        f.write("0.5\n0.25\n")
    cfg = TaggerConfig(kind="ram", tag_thresholds="memory://vocabulary/thr.txt")
    vocab = _vocabulary(read_tag_list("memory://vocabulary/tags.txt"), cfg)
    assert vocab.tags == ["dog", "cat"] and vocab.thresholds.tolist() == [0.5, 0.25]
    with pytest.raises(ConfigError, match=r"models\.tagger\.tag_list.*cannot read"):
        read_tag_list("memory://vocabulary/missing.txt")


def test_packaged_tags_have_no_blanks_or_duplicates():
    tags = packaged_tags()
    assert tags and all(t == t.strip() and t for t in tags) and len(set(tags)) == len(tags)
