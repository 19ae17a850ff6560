"""Manifests that belong together agree: every manifest under manifests/ loads with its real loader, and
each data path a training or analysis manifest reads is written by an annotation manifest (or by a synthetic
build the same manifest defines); each run folder an analysis reads is a pretrain manifest's output_dir.

A new kind of manifest fails `test_every_manifest_has_a_known_loader` until KINDS below says how to load it
and which paths it writes and reads (as the sft-*.yaml entry does)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from pad_pipeline.annotate.config import load_annotate_config
from trainer.analysis.config import TRAIN_PREFIX, load_analyze_config, pretrain_config
from trainer.config.pretrain import load_pretrain_config

MANIFESTS = sorted((Path(__file__).resolve().parents[2] / "manifests").glob("*.yaml"))
PROJECTOR_FILES = (".bin", ".pt", ".pth", ".safetensors")


@dataclass
class Paths:
    """What one manifest writes and reads. `builds`: PAD builds; `runs`: training run folders."""

    writes_builds: set[str] = field(default_factory=set)
    writes_runs: set[str] = field(default_factory=set)
    reads_builds: set[str] = field(default_factory=set)
    reads_runs: set[str] = field(default_factory=set)
    own_builds: set[str] = field(default_factory=set)  # synthetic builds this manifest makes for itself


def _norm(path: str) -> str:
    return path.rstrip("/") if "://" in path else posixpath.normpath(path)


def _annotate(path: Path) -> Paths:
    cfg = load_annotate_config(path)
    return Paths(writes_builds={cfg.output.path})


def _pretrain(path: Path) -> Paths:
    cfg = load_pretrain_config(path)
    return Paths(writes_runs={cfg.train.output_dir}, reads_builds={cfg.data.path})


def _sft(path: Path) -> Paths:
    from trainer.config.sft import load_sft_config

    cfg = load_sft_config(path)
    source = cfg.init.projector
    runs = {source} if source and not source.endswith(PROJECTOR_FILES) else set()
    return Paths(writes_runs={cfg.train.output_dir}, reads_runs=runs)


def _analyze(path: Path) -> Paths:
    cfg = load_analyze_config(path)
    runs = list(cfg.train.runs) if cfg.train else []
    paths = Paths(own_builds={s.out for s in cfg.synthetic.values()}, reads_builds={cfg.data.path})
    paths.reads_builds |= {pretrain_config(cfg, run).data.path for run in runs}
    paths.reads_runs = {p.source for p in cfg.projectors.values() if p.source != "random"
                        and not p.source.startswith(TRAIN_PREFIX) and not p.source.endswith(PROJECTOR_FILES)}
    return paths


def _miniature(path: Path) -> Paths:
    from trainer.eval.miniature.config import load_miniature_manifest

    cfg = load_miniature_manifest(path)
    build = posixpath.join(cfg.output_dir, "data", "shapes-train")  # trainer.eval.miniature.prepare's layout
    return Paths(own_builds={build}, reads_builds={build})


# (name, does this manifest belong to the kind, its loader -> Paths). First match wins; order matters.
KINDS: list[tuple[str, Callable[[Path, dict[str, Any]], bool], Callable[[Path], Paths]]] = [
    ("annotate", lambda path, raw: "source" in raw, _annotate),
    ("analyze", lambda path, raw: "projectors" in raw, _analyze),
    ("miniature", lambda path, raw: "miniature" in raw, _miniature),
    ("pretrain", lambda path, raw: path.name.startswith("pretrain-"), _pretrain),
    ("sft", lambda path, raw: path.name.startswith("sft-"), _sft),
]


def _kind(path: Path) -> tuple[str, Callable[[Path], Paths]] | None:
    raw = yaml.safe_load(path.read_text()) or {}
    return next(((name, load) for name, match, load in KINDS if match(path, raw)), None)


def _paths(path: Path) -> Paths:
    kind = _kind(path)
    assert kind is not None, f"{path.name}: no loader known for this kind of manifest"
    p = kind[1](path)
    return Paths(*({_norm(x) for x in group} for group in
                   (p.writes_builds, p.writes_runs, p.reads_builds, p.reads_runs, p.own_builds)))


@pytest.fixture(scope="module")
def every_manifest() -> dict[str, Paths]:
    return {path.name: _paths(path) for path in MANIFESTS if _kind(path) is not None}


def test_the_manifests_are_found():
    names = {p.name for p in MANIFESTS}
    assert {"demo.yaml", "pad-llava558k.yaml", "pretrain-demo.yaml", "reproduce-demo.yaml"} <= names


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_has_a_known_loader(path):
    kind = _kind(path)
    assert kind is not None, (
        f"manifests/{path.name}: tests/unit/test_manifests.py knows no loader for this kind of manifest; teach it "
        "the new loader: add an entry to KINDS (how to recognise it, and a function that loads it with the real "
        "loader and returns the builds/runs it writes and reads)")
    kind[1](path)  # loads with the real loader: a ConfigError here names the field


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_data_path_is_written_by_a_manifest(path, every_manifest):
    if path.name not in every_manifest:
        pytest.fail(f"manifests/{path.name}: unknown kind (see test_every_manifest_has_a_known_loader)")
    mine = every_manifest[path.name]
    builds = {b: name for name, p in every_manifest.items() for b in p.writes_builds}
    runs = {r: name for name, p in every_manifest.items() for r in p.writes_runs}
    orphan_builds = sorted(mine.reads_builds - set(builds) - mine.own_builds)
    orphan_runs = sorted(mine.reads_runs - set(runs))
    assert not orphan_builds, (f"manifests/{path.name} reads PAD builds {orphan_builds} that no annotation manifest "
                               f"writes (annotation outputs: {builds})")
    assert not orphan_runs, (f"manifests/{path.name} reads run folders {orphan_runs} that no pretrain manifest "
                             f"writes ({runs})")


def test_training_and_analysis_manifests_read_something(every_manifest):
    readers = {name: p for name, p in every_manifest.items() if not p.writes_builds}
    assert readers, "no training or analysis manifest found"
    blind = sorted(name for name, p in readers.items() if not p.reads_builds and not p.reads_runs)
    assert not blind, f"{blind}: the test found no data path in these manifests; teach KINDS where they are"


def test_no_two_manifests_write_the_same_output(every_manifest):
    seen: dict[str, str] = {}
    for name, p in every_manifest.items():
        for out in p.writes_builds | p.writes_runs | p.own_builds:
            assert out not in seen, f"manifests/{name} and manifests/{seen[out]} both write {out}"
            seen[out] = name


def test_a_mismatched_pair_is_caught(tmp_path):
    """The check itself: a pretrain manifest that reads a build nobody writes is an orphan."""
    (tmp_path / "pad-x.yaml").write_text("source: {kind: image_dir, path: images}\noutput: {path: out/pad-x}\n")
    (tmp_path / "pretrain-x.yaml").write_text("data: {path: out/pad-y}\n")
    written = _paths(tmp_path / "pad-x.yaml").writes_builds
    read = _paths(tmp_path / "pretrain-x.yaml").reads_builds
    assert written == {"out/pad-x"} and read == {"out/pad-y"} and not read <= written
