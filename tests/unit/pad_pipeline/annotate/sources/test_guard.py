"""Nothing is read outside the source's root: `..`, absolute paths and symlinks that leave `image_root`
become the named failure `outside_root` without being opened (planning probe and shard task alike),
unless the manifest sets `source.allow_outside_root: true`."""

import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from pad_pipeline.annotate.config import AnnotateConfig, SourceConfig
from pad_pipeline.annotate.plan import make_or_resume_plan
from pad_pipeline.annotate.results import ImageAnnotation
from pad_pipeline.annotate.shard_task import process_shard
from pad_pipeline.annotate.sources import base
from pad_pipeline.annotate.sources.guard import is_under, outside_root


def _jpeg(path):
    buf = io.BytesIO()
    Image.fromarray(np.full((20, 24, 3), 90, np.uint8)).save(buf, format="JPEG")
    path.write_bytes(buf.getvalue())


def no_annotations(batches):
    """An annotator that finds nothing in any image (the shard task's bookkeeping is what is tested)."""
    for batch in batches:
        yield [ImageAnnotation() for _ in batch]


@pytest.fixture
def opened(monkeypatch):
    """Every plain file the source layer opens."""
    log, real = [], base._read_file

    def read_file(location, max_bytes):
        log.append(os.path.realpath(location))
        return real(location, max_bytes)

    monkeypatch.setattr(base, "_read_file", read_file)
    return log


def _corpus(tmp_path):
    """image_root with two good images and a symlink inside, one out; a secret beside the root."""
    root, outside = tmp_path / "images", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    _jpeg(root / "a.jpg")
    _jpeg(root / "b.jpg")
    _jpeg(outside / "secret.jpg")
    os.symlink(outside / "secret.jpg", root / "link_out.jpg")
    os.symlink(root / "a.jpg", root / "link_in.jpg")
    images = ["a.jpg", "b.jpg", "link_in.jpg", "../outside/secret.jpg", str(outside / "secret.jpg"),
              "link_out.jpg", "sub/../../outside/secret.jpg"]
    listing = tmp_path / "list.json"
    listing.write_text(json.dumps([{"id": str(i), "image": im, "conversations": []} for i, im in enumerate(images)]))
    return root, outside, listing


def test_paths_that_resolve_outside_the_root(tmp_path):
    root, outside, _ = _corpus(tmp_path)
    assert is_under(str(root / "a.jpg"), str(root)) and is_under(str(root / "link_in.jpg"), str(root))
    assert not is_under(str(root / "link_out.jpg"), str(root))          # a symlink out
    assert not is_under(os.path.join(str(root), "../outside/secret.jpg"), str(root))
    assert not is_under("/etc/hostname", str(root))
    assert not is_under(str(tmp_path / "images2" / "x.jpg"), str(root))  # a sibling sharing the prefix
    assert is_under("memory://bucket/root/a/../b.jpg", "memory://bucket/root")
    assert not is_under("memory://bucket/root/../other/b.jpg", "memory://bucket/root")
    assert not is_under("memory://bucket/root/x.jpg", str(root))


def test_outside_inputs_are_named_failures_never_opened(tmp_path, opened):
    root, outside, listing = _corpus(tmp_path)
    cfg = AnnotateConfig.model_validate({"source": {"kind": "llava_json", "path": str(listing),
                                                    "image_root": str(root)}, "output": {"shard_size": 10}})
    plan = make_or_resume_plan(cfg, str(tmp_path / "out"), stream=io.StringIO())
    record = process_shard(cfg, plan, 0, no_annotations).record
    assert record.failures == {"../outside/secret.jpg": "outside_root", str(outside / "secret.jpg"): "outside_root",
                               "link_out.jpg": "outside_root", "sub/../../outside/secret.jpg": "outside_root"}
    assert record.failure_counts == {"outside_root": 4}
    assert not any(p.startswith(str(outside)) for p in opened)  # neither the probe nor the shard task read them
    assert set(opened) >= {str(root / "a.jpg"), str(root / "b.jpg")}


def test_allow_outside_root_reads_them(tmp_path, opened):
    root, outside, listing = _corpus(tmp_path)
    source = SourceConfig(kind="llava_json", path=str(listing), image_root=str(root), allow_outside_root=True)
    assert outside_root(source, [str(outside / "secret.jpg")]) == set()
    cfg = AnnotateConfig(source=source, output={"shard_size": 10})
    plan = make_or_resume_plan(cfg, str(tmp_path / "out"), stream=io.StringIO())
    failures = process_shard(cfg, plan, 0, no_annotations).record.failures
    assert list(failures) == ["sub/../../outside/secret.jpg"]  # read: the OS finds no `sub` to go up from
    assert str(outside / "secret.jpg") in opened


def test_image_dir_symlinks_out_of_the_folder_are_refused(tmp_path):
    root, outside, _ = _corpus(tmp_path)
    cfg = AnnotateConfig.model_validate({"source": {"kind": "image_dir", "path": str(root)},
                                         "output": {"shard_size": 10}})
    plan = make_or_resume_plan(cfg, str(tmp_path / "out"), stream=io.StringIO())
    assert process_shard(cfg, plan, 0, no_annotations).record.failures == {"link_out.jpg": "outside_root"}
