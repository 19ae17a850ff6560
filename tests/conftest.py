"""Shared test set-up: deterministic, CPU-friendly torch; no network for model hubs."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
# datasets keys its cache of a local folder by the folder's name, not its content: a stale "repo" in the
# user's (or the CI image's) cache was once read back in place of the build under test. Each run gets its own.
os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="pad-test-datasets-")
atexit.register(shutil.rmtree, os.environ["HF_DATASETS_CACHE"], ignore_errors=True)

import torch  # noqa: E402

torch.set_flush_denormal(True)
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

import pytest  # noqa: E402
from helpers import make_bad_corpus  # noqa: E402


@pytest.fixture
def bad_corpus(tmp_path):
    folder = tmp_path / "bad"
    return folder, make_bad_corpus(folder)


# `make test` runs two xdist workers with `--dist loadgroup`. An integration module stays on one worker (its
# module-scoped fixtures, e.g. a demo build or a Ray instance, are made once); the modules that start or
# join a `ray start` cluster share one group, since a driver without an address joins the latest such cluster.
_SHARED_GROUPS = {"test_ray_job_submit": "ray-cluster", "test_pretrain_ray": "ray-cluster"}


def pytest_configure(config):
    # pytest 9.2 keeps node ids in `_id`, where xdist 3.8's loadgroup cannot write the groups: each integration
    # test would then rebuild its module's fixtures on both workers, and the Ray-cluster modules could overlap.
    import xdist
    from packaging.version import Version

    if (config.getoption("dist", "no") == "loadgroup" and Version(pytest.__version__) >= Version("9.2")
            and Version(xdist.__version__) <= Version("3.8.0")):
        raise pytest.UsageError(f"pytest {pytest.__version__} breaks xdist {xdist.__version__}'s --dist loadgroup: "
                                "install the `test` extra (setup.cfg pins pytest<9.2)")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which writes the groups into the node ids
def pytest_collection_modifyitems(config, items):
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.xdist_group(_SHARED_GROUPS.get(item.path.stem, item.path.stem)))
