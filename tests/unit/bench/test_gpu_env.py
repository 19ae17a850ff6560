"""bench/gpu_env.py: carried wheels onto sys.path only when needed, and per-section caps."""

import sys
import time
import zipfile

import pytest
from helpers import REPO

sys.path.insert(0, str(REPO / "bench"))
import gpu_env  # noqa: E402


def _wheel(folder, name="padbenchfake"):
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}/__init__.py", "VALUE = 42\n")
        zf.writestr(f"{name}-1.0.dist-info/METADATA", f"Name: {name}\nVersion: 1.0\n")
    return path


def test_carried_wheels_go_on_sys_path_only_when_a_needed_module_is_missing(tmp_path, monkeypatch):
    _wheel(tmp_path / "whl")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(gpu_env, "NEEDED", ("padbenchfake",))
    site = gpu_env.unpack_wheels(tmp_path / "whl", into=tmp_path / "site")
    assert (site / "padbenchfake" / "__init__.py").is_file()
    monkeypatch.setattr(gpu_env, "unpack_wheels", lambda folder: site)
    assert gpu_env.missing_modules(("padbenchfake",)) == ["padbenchfake"]
    assert gpu_env.add_carried_wheels(tmp_path / "whl") == []  # now importable
    assert sys.path[0] == str(site)
    import padbenchfake

    assert padbenchfake.VALUE == 42
    monkeypatch.delitem(sys.modules, "padbenchfake")
    before = list(sys.path)
    assert gpu_env.add_carried_wheels(tmp_path / "whl") == [] and sys.path == before  # nothing to add twice


def test_without_wheels_the_missing_modules_are_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_env, "NEEDED", ("padbench_not_there",))
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert gpu_env.add_carried_wheels(tmp_path / "empty") == ["padbench_not_there"]


def test_a_section_past_its_cap_raises_and_is_timed():
    budget = gpu_env.Budget(total_s=100)
    with pytest.raises(gpu_env.SectionTimeout, match="slow: over its 1 s cap"):
        with budget.section("slow", cap_s=1.0):
            time.sleep(2)
    with budget.section("quick", cap_s=5.0) as allowed:
        assert allowed == 5.0
    assert 0.9 < budget.seconds["slow"] < 1.9 and budget.seconds["quick"] < 0.5
    assert gpu_env.Budget(total_s=0.0).left() <= 0  # a spent budget still gives a section its minimum second
