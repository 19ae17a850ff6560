"""The refer pickle loader accepts plain data (Python 2 and 3 pickles) and refuses any global."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
from benchmark_files import py2_pickle

from pad_pipeline.core.errors import PadError
from trainer.eval.readers.plain_pickle import load_plain_pickle

REFS = [{"ref_id": 1, "split": "testA", "sentences": [{"sent": "the man", "raw": "The man!"}], "bbox": [1.5, 2.0]}]


def test_python3_protocol2_pickle_loads(tmp_path: Path) -> None:
    path = tmp_path / "refs(unc).p"
    path.write_bytes(pickle.dumps(REFS, protocol=2))
    assert load_plain_pickle(path) == REFS


def test_python2_str_pickle_loads_as_text(tmp_path: Path) -> None:
    path = tmp_path / "refs(umd).p"
    data = [{"ref_id": 7, "sentences": [{"sent": "café à droite", "raw": b"caf\xe9"}], "score": 0.25, "ok": True}]
    path.write_bytes(py2_pickle(data))
    # the unrestricted loader shows what Python 2 str becomes without decoding: bytes keys and values
    assert pickle.loads(path.read_bytes(), encoding="bytes")[0][b"ref_id"] == 7
    assert load_plain_pickle(path) == [{"ref_id": 7, "sentences": [{"sent": "café à droite", "raw": "café"}],
                                        "score": 0.25, "ok": True}]


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_global_is_refused_and_never_called(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "refs(unc).p"
    path.write_bytes(pickle.dumps([{"ref_id": 1, "x": _Exploit(marker)}], protocol=2))
    with pytest.raises(PadError, match=r"refs\(unc\)\.p: not a pickle of plain data .*global (posix|os)\.system"):
        load_plain_pickle(path)
    assert not marker.exists()


def test_builtin_global_and_non_plain_types_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.p"
    path.write_bytes(pickle.dumps([Path("x")], protocol=2))  # pathlib.PosixPath via a global
    with pytest.raises(PadError, match="a.p: not a pickle of plain data"):
        load_plain_pickle(path)
    path.write_bytes(pickle.dumps([{1, 2}], protocol=4))  # a set needs no global at protocol 4
    with pytest.raises(PadError, match="a.p: holds a set, not plain data"):
        load_plain_pickle(path)
    path.write_bytes(b"not a pickle")
    with pytest.raises(PadError, match="a.p: not a pickle"):
        load_plain_pickle(path)
