"""`pad publish`: the repository's files and card, the dry-run folder, and the pieces of the resumable
upload. The upload against a local stand-in for the Hub, with the real client, is in
tests/integration/test_look_and_share.py."""

import hashlib
import os

import pytest
import yaml

from pad_pipeline.cli import main
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.publish_config import PublishConfig
from pad_pipeline.dataset.synthetic import random_field_build
from pad_pipeline.tools import publish as publish_mod
from pad_pipeline.tools.card import CardInfo, card_metadata
from pad_pipeline.tools.hub_upload import RemoteFile, already_there, commit_batches, git_blob_id, require_token
from pad_pipeline.tools.publish import RepoFile, publish_settings, repository_files, shard_folder

PUBLISH = {"license": "cc-by-4.0", "source": "LLaVA-Pretrain LCS-558K images", "citation": "@misc{x, title={X}}",
           "max_files_per_commit": 7}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One build for the tests that only read it."""
    return _build(tmp_path_factory.mktemp("publish"), PUBLISH)


def _build(tmp_path, publish=None, n=6):
    out = tmp_path / "b"
    random_field_build(str(out), num_samples=n, shard_size=2, min_side=16, max_side=20)
    config = {"source": {"kind": "image_dir", "path": "/data/images"},
              "models": {"tagger": {"kind": "ram_plus", "checkpoint": "xinyu1205/recognize-anything-plus-model",
                                    "revision": "abc123", "threshold": 0.68},
                         "detector": {"kind": "grounding_dino", "checkpoint": "IDEA-Research/grounding-dino-base",
                                      "box_threshold": 0.25, "text_threshold": 0.2},
                         "nms": {"iou_threshold": 0.5}}}
    if publish:
        config["publish"] = publish
    (out / "config.yaml").write_text(yaml.safe_dump(config))
    return out


def _card(files):
    text = next(f for f in files if f.path == "README.md").data.decode()
    _, front, body = text.split("---\n", 2)
    return yaml.safe_load(front), body


def test_repository_holds_committed_shards_stats_and_a_card_last(built):
    out = built
    files = repository_files(str(out), "org/pad", publish_settings(str(out)))
    paths = [f.path for f in files]
    assert paths[:3] == ["pad-000000.tar", "pad-000000.parquet", "pad-000000.json"] and paths[-1] == "README.md"
    assert {"plan.json", "config.yaml", "stats/stats.json", "stats/top_tags.png"} <= set(paths)
    assert not any(p.startswith("plan/") for p in paths)  # the input lists name local source files
    tar = next(f for f in files if f.path == "pad-000002.tar")
    assert tar.sha256 == hashlib.sha256((out / "pad-000002.tar").read_bytes()).hexdigest()
    meta, body = _card(files)
    assert meta["license"] == "cc-by-4.0" and meta["configs"][0]["data_files"] == [{"split": "train",
                                                                                     "path": "pad-*.tar"}]
    assert "| tag | ram_plus | xinyu1205/recognize-anything-plus-model | abc123 | threshold=0.68 |" in body
    assert "box_threshold=0.25, text_threshold=0.2" in body and "LLaVA-Pretrain LCS-558K images" in body
    assert "@misc{x, title={X}}" in body and "pad-{000000..000002}.tar" in body
    for f in files:
        assert f.size == len(f.read())


def test_no_licence_is_never_guessed(built):
    out = built
    meta, body = _card(repository_files(str(out), "org/pad", PublishConfig()))
    assert "license" not in meta and "No licence has been stated" in body
    custom = PublishConfig(license_name="my-terms", license_link="LICENSE.md")
    assert (custom.license, custom.license_name) == ("other", "my-terms")
    meta = card_metadata(CardInfo("org/pad", {"samples": 5}, custom, "pad-*.tar", []))
    assert (meta["license"], meta["license_name"], meta["license_link"]) == ("other", "my-terms", "LICENSE.md")
    with pytest.raises(PadError, match="license_name and license_link go with license: other"):
        publish_settings(str(out), {"license_link": "x"})  # the build's config.yaml says cc-by-4.0


def test_flags_override_the_manifests_section(built):
    cfg = publish_settings(str(built), {"source": "from a flag", "license": None})
    assert (cfg.source, cfg.license, cfg.max_files_per_commit) == ("from a flag", "cc-by-4.0", 7)


def test_partial_builds_are_refused_unless_asked(tmp_path):
    out = _build(tmp_path)
    (out / "pad-000001.json").unlink()
    with pytest.raises(PadError, match="shards 1 are not committed"):
        repository_files(str(out), "org/pad", PublishConfig())
    paths = [f.path for f in repository_files(str(out), "org/pad", PublishConfig(), allow_partial=True)]
    assert "pad-000000.tar" in paths and "pad-000001.tar" not in paths


def test_shards_move_into_part_folders_only_past_the_folder_limit():
    assert shard_folder(3000, 3330) == ""
    assert (shard_folder(0, 3400), shard_folder(2999, 3400), shard_folder(3000, 3400)) == (
        "part-000/", "part-000/", "part-001/")


def test_oversized_files_are_refused_before_any_upload(built, monkeypatch):
    out = built
    monkeypatch.setattr(publish_mod, "MAX_FILE_BYTES", 1000)
    with pytest.raises(PadError, match="pad-000000.tar.*over the Hub's 50 GB per file"):
        repository_files(str(out), "org/pad", PublishConfig())


def test_dry_run_writes_the_repository_outside_the_build(built, tmp_path, capsys):
    out = built
    repo = tmp_path / "repo"
    assert main(["publish", str(out), "--repo-id", "org/pad", "--dry-run", str(repo), "--license", "mit"]) == 0
    listed = capsys.readouterr().out.split()
    assert "README.md" in listed and "pad-000002.tar" in listed
    assert (repo / "README.md").exists() and not (out / "README.md").exists()
    assert os.path.samefile(repo / "pad-000001.tar", out / "pad-000001.tar")  # a hard link, not a copy
    assert yaml.safe_load((repo / "README.md").read_text().split("---\n")[1])["license"] == "mit"
    assert main(["publish", str(out), "--repo-id", "org/pad", "--dry-run", str(out / "x")]) == 2
    assert "outside the build" in capsys.readouterr().err


def test_finished_files_are_recognised_by_content():
    assert git_blob_id(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # git's empty blob
    small = RepoFile("a.json", 2, data=b"{}")
    assert already_there(small, RemoteFile(2, git_blob_id(b"{}"), None))
    assert not already_there(small, RemoteFile(2, git_blob_id(b"[]"), None))
    tar = RepoFile("pad-000000.tar", 3, data=b"abc", sha256=hashlib.sha256(b"abc").hexdigest())
    assert already_there(tar, RemoteFile(3, "whatever", hashlib.sha256(b"abc").hexdigest()))
    assert not already_there(tar, RemoteFile(4, "whatever", hashlib.sha256(b"abc").hexdigest()))
    assert not already_there(tar, None)


def test_commit_batches_bound_count_and_size():
    files = [RepoFile(f"f{i}", 3, data=b"abc") for i in range(7)]
    names = [[f.path for f in b] for b in commit_batches(files, max_files=3, max_bytes=100)]
    assert names == [["f0", "f1", "f2"], ["f3", "f4", "f5"], ["f6"]]
    assert [len(b) for b in commit_batches(files, max_files=100, max_bytes=6)] == [2, 2, 2, 1]


def test_no_token_is_a_one_line_error_before_any_work(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    with pytest.raises(PadError, match="hf auth login"):
        require_token()
