"""`--out` checks before anything is written: a folder that is not a PAD build is refused, a build whose
plan.json is gone is refused with its way out (`--redo all` or a fresh --out), and config.yaml records
the --out actually used."""

import os

import pytest
import yaml
from helpers import REPO, good_images, write_manifest

from pad_pipeline.annotate.config import load_annotate_config
from pad_pipeline.cli import main
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.out_folder import check_out_folder
from pad_pipeline.dataset.synthetic import random_field_build

DEMO = str(REPO / "manifests" / "demo.yaml")


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_folder_of_other_files_is_refused_in_one_line_and_left_untouched(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.txt").write_text("four years")
    (out / "config.yaml").write_text("mine: true\n")
    (out / "pad-000000.json").write_text('{"my": "data"}')
    before = _snapshot(out)
    assert main(["annotate", DEMO, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a PAD build (no plan.json) and not empty (holds thesis.txt)" in err[0]
    assert _snapshot(out) == before


def test_what_a_build_folder_may_hold(tmp_path):
    check_out_folder(str(tmp_path / "new"))  # does not exist yet
    (tmp_path / "empty").mkdir()
    check_out_folder(str(tmp_path / "empty"))
    (tmp_path / "empty" / ".DS_Store").write_bytes(b"x")  # hidden entries are ignored
    check_out_folder(str(tmp_path / "empty"))
    interrupted = tmp_path / "interrupted"  # planning was interrupted: only PAD's own names
    (interrupted / "plan").mkdir(parents=True)
    (interrupted / "lease.json").write_text("{}")
    check_out_folder(str(interrupted))


def test_shards_without_a_plan_are_refused_with_the_way_out(tmp_path, capsys):
    out = tmp_path / "b"
    random_field_build(str(out), num_samples=4, shard_size=2, min_side=16, max_side=24)
    os.remove(out / "plan.json")
    with pytest.raises(PadError, match="holds 6 shard files but no plan.json.*--redo all, or use a fresh --out"):
        check_out_folder(str(out))
    check_out_folder(str(out), redo_all=True)
    before = _snapshot(out)
    assert main(["annotate", DEMO, "--out", str(out)]) == 2
    assert "--redo all" in capsys.readouterr().err and _snapshot(out) == before  # never re-planned over them


def test_config_yaml_records_the_out_actually_used(tmp_path):
    from pad_pipeline.ray.driver import _prepare

    good_images(tmp_path / "src", 3)
    manifest = write_manifest(tmp_path / "m.yaml", tmp_path / "src", tmp_path / "manifest-out")
    out = str(tmp_path / "given")
    plan, todo, _ = _prepare(load_annotate_config(str(manifest)), out, None, None, open(os.devnull, "w"))
    assert todo == [0] and yaml.safe_load(open(os.path.join(out, "config.yaml")))["output"]["path"] == out
