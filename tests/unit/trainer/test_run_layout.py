"""RunLayout spells every name of a run folder; checkpoint names round-trip through the checkpoint reader."""

import os

from trainer.run_layout import RunLayout, checkpoint_name
from trainer.training import checkpoint


def test_run_folder_names():
    run = RunLayout("/r")
    assert run.config == "/r/config.yaml" and run.metrics == "/r/metrics.jsonl"
    assert run.tensorboard == "/r/tensorboard" and run.skipped == "/r/skipped-samples.jsonl"
    assert run.checkpoint(4) == "/r/checkpoints/step-00000004" and run.partial(4) == run.checkpoint(4) + ".partial"
    assert run.latest == "/r/checkpoints/latest" and run.data_index == "/r/data-index.parquet"
    assert (run.export(), run.export("hf"), run.export("llava")) == ("/r/export", "/r/export-hf", "/r/export-llava")
    assert run.exported_projector == "/r/export/projector.safetensors"
    assert run.llava_projector == "/r/export/mm_projector.bin"
    assert checkpoint_name(12) == "step-00000012"


def test_checkpoint_protocol_uses_the_layout(tmp_path):
    out = str(tmp_path)
    partial = checkpoint.prepare_partial(out, 3)
    assert partial == RunLayout(out).partial(3) and os.path.isdir(partial)
    checkpoint.commit(out, 3, {}, keep=2)
    assert checkpoint.latest_checkpoint(out) == RunLayout(out).checkpoint(3)
    assert open(RunLayout(out).latest).read().strip() == checkpoint_name(3)
