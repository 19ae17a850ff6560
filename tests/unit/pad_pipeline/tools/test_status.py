"""`pad status` and `pad verify`: light, ranges, and verify's verdicts on whole, partial and damaged builds."""

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
