"""The one projector reader: a run folder falls back to its newest checkpoint, a file of ours keeps its kind."""

import os

import pytest
import torch
from safetensors.torch import save_file

from pad_pipeline.core.errors import PadError
from trainer.config.sections import ProjectorConfig
from trainer.export.projector_source import read_projector, run_projector_file, source_file
from trainer.models.projectors import build_projector
from trainer.run_layout import PROJECTOR_FILE, RunLayout
from trainer.training import checkpoint


def test_run_folder_without_export_reads_its_newest_checkpoint(tmp_path):
    run = str(tmp_path / "run")
    with pytest.raises(PadError, match="no export/projector.safetensors"):
        run_projector_file(run)
    checkpoint.prepare_partial(run, 2)
    torch.manual_seed(0)
    ref = build_projector("linear", 8, 16)
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()},
              os.path.join(RunLayout(run).partial(2), PROJECTOR_FILE))
    checkpoint.commit(run, 2, {}, keep=2)
    path = source_file("init", run)
    assert path == os.path.join(RunLayout(run).checkpoint(2), PROJECTOR_FILE)
    # keys without our metadata: the kind is inferred (linear), not taken from the model section (mlp2x_gelu)
    loaded = read_projector("init", path, None, ProjectorConfig(kind="mlp2x_gelu"), 8, 16, 5)
    x = torch.randn(1, 5, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), ref(x))
    with pytest.raises(PadError, match=r"projector.safetensors: does not fit a linear projector 8 -> 32"):
        read_projector("init", path, None, ProjectorConfig(), 8, 32, 5)
