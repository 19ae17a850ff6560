"""`pad status` and `pad verify`: light, ranges, and verify's verdicts on whole, partial and damaged builds."""

import hashlib
import json
import subprocess
import sys

import pytest
from helpers import REPO

from pad_pipeline.cli import main
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.synthetic import random_field_build
from pad_pipeline.tools.status import build_status, repair_command, verify_build


@pytest.fixture()
def build(tmp_path):
    out = str(tmp_path / "b")
    random_field_build(out, num_samples=10, shard_size=2, min_side=16, max_side=24)
    return tmp_path / "b"


def test_whole_build_verifies(build, capsys):
    report = verify_build(str(build))
    assert (report.planned, report.shards_checked, report.samples) == (5, 5, 10) and not report.problems
    assert main(["verify", str(build)]) == 0


def test_damaged_tar_is_named_with_the_command_that_rebuilds_it(build, capsys):
    tar = build / "pad-000003.tar"
    data = bytearray(tar.read_bytes())
    data[700] ^= 1  # same size: still "committed", but the checksum is wrong
    tar.write_bytes(bytes(data))
    (build / "pad-000001.json").write_text("{broken")
    report = verify_build(str(build))
    assert report.damaged == [1, 3] and len(report.problems) == 2
    assert main(["verify", str(build)]) == 1
    err = capsys.readouterr().err
    assert "2 damaged shard(s)" in err and f"--out {build} --redo 1,3" in err
    assert repair_command(str(build), [1, 3]).startswith("pad annotate MANIFEST")  # no config.yaml here


def test_missing_shards_fail_unless_partial_is_allowed(build, capsys):
    for name in ("pad-000002.json", "pad-000004.json"):
        (build / name).unlink()
    assert verify_build(str(build)).missing == [2, 4]
    assert main(["verify", str(build)]) == 1
    assert "2 of 5 planned shards are not committed" in capsys.readouterr().err
    assert main(["verify", str(build), "--allow-partial"]) == 0
    status = build_status(str(build))
    assert status["pending_shards"] == "2,4" and status["states"] == {"committed": 3, "partial": 2}


def test_paths_that_are_not_builds(tmp_path, capsys):
    with pytest.raises(PadError, match="no such folder"):
        verify_build(str(tmp_path / "nope"))
    with pytest.raises(PadError, match="no plan here"):
        verify_build(str(tmp_path))
    assert main(["verify", str(tmp_path / "nope")]) == 2 and main(["status", str(tmp_path)]) == 2


def test_status_is_light_and_survives_a_closed_pipe(build):
    code = ("import sys; from pad_pipeline.cli import main; rc = main(['status', sys.argv[1]]); "
            "print(sorted(m for m in ('torch', 'transformers', 'ray') if m in sys.modules), file=sys.stderr); "
            "sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, str(build)], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0 and out.stderr.strip().endswith("[]")
    piped = subprocess.run(f"{sys.executable} -m pad_pipeline.cli status {build} | head -1", shell=True,
                           cwd=REPO, capture_output=True, text=True)
    assert piped.stdout == "{\n" and "Traceback" not in piped.stderr


def _flip(path, at=None):
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if at is None else at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_flipped_byte_in_a_parquet_index_is_named_and_stats_fail_in_one_line(build, capsys):
    _flip(build / "pad-000001.parquet")
    report = verify_build(str(build))
    assert report.damaged == [1] and report.problems == ["pad-000001.parquet: sha256 does not match its record"]
    assert main(["verify", str(build)]) == 1
    assert f"--out {build} --redo 1" in capsys.readouterr().err
    assert main(["stats", str(build)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pad-000001.parquet: damaged parquet index" in err[0] and err[0].endswith("--redo 1")
    assert main(["publish", str(build), "--repo-id", "me/pad", "--dry-run", str(build.parent / "repo")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "pad-000001.parquet: damaged parquet index" in err[-1] and err[-1].endswith("--redo 1")


def test_an_index_that_disagrees_with_tar_and_record_is_named(build):
    from pad_pipeline.dataset.reader import read_record
    from pad_pipeline.dataset.writer import build_index

    record = read_record(str(build), 2)
    index = build_index([], {"someone_else.jpg": "decode_error"})  # rows of another shard's inputs
    (build / "pad-000002.parquet").write_bytes(index)
    data = json.loads((build / "pad-000002.json").read_text())
    data.update(index_sha256=hashlib.sha256(index).hexdigest(), index_bytes=len(index))  # as a writer would
    (build / "pad-000002.json").write_text(json.dumps(data))
    problems = verify_build(str(build)).problems
    assert record.num_samples == 2 and len(problems) == 3
    assert "pad-000002.parquet: 1 rows, the record has 2 samples and 0 failures" in problems
    assert "pad-000002.parquet: its ok rows are not the tar's samples (keys and image ids)" in problems
    assert "pad-000002.parquet: its failure rows are not the record's failures" in problems


def test_a_shard_of_another_plan_is_named_by_verify_and_not_read(build, tmp_path, capsys):
    other = tmp_path / "other"
    random_field_build(str(other), num_samples=10, shard_size=2, min_side=16, max_side=24)  # same bytes, own plan
    for name in ("pad-000004.tar", "pad-000004.parquet", "pad-000004.json"):
        (build / name).write_bytes((other / name).read_bytes())
    report = verify_build(str(build))
    assert report.damaged == [4] and "pad-000004.json: it belongs to another plan" in report.problems[0]
    assert main(["verify", str(build)]) == 1
    assert build_status(str(build))["damaged_shards"] == "4"
