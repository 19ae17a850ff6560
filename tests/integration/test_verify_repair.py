"""`pad verify` names a damaged shard and the one command that rebuilds it; `--shards` and `--out` are
checked before anything is written."""

import hashlib
import subprocess
import sys

from helpers import REPO

from pad_pipeline.cli import main

DEMO = str(REPO / "manifests" / "demo.yaml")


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_damaged_shard_is_rebuilt_by_the_command_verify_prints(tmp_path):
    out = tmp_path / "demo"
    assert main(["annotate", DEMO, "--out", str(out), "--set", "runner.num_cpus=2"]) == 0
    tars = sorted(out.glob("pad-*.tar"))
    before = {p.name: _sha(p) for p in tars}
    data = bytearray(tars[1].read_bytes())
    data[1000] ^= 1
    tars[1].write_bytes(bytes(data))
    verify = subprocess.run([sys.executable, "-m", "pad_pipeline.cli", "verify", str(out)], cwd=REPO,
                            capture_output=True, text=True)
    assert verify.returncode == 1 and "pad-000001.tar: sha256 does not match" in verify.stdout
    command = verify.stderr.strip().rsplit("rebuild exactly those with: ", 1)[1]
    assert command == f"pad annotate {out}/config.yaml --out {out} --redo 1"
    args = command.split()[1:] + ["--set", "runner.num_cpus=2"]
    assert main(args) == 0
    assert {p.name: _sha(p) for p in sorted(out.glob("pad-*.tar"))} == before  # byte-identical again
    assert main(["verify", str(out)]) == 0


def test_bad_selection_or_output_file_writes_nothing(tmp_path, capsys):
    out = tmp_path / "never"
    for shards in ("3-1", "99", "0-99999999999"):
        assert main(["annotate", DEMO, "--out", str(out), "--shards", shards]) == 2
        assert not out.exists()
    assert "ends before it starts" in capsys.readouterr().err
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["annotate", DEMO, "--out", str(afile / "sub")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a file, not a folder" in err[0]
