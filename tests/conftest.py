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
