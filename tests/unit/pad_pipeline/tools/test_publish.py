"""`pad publish`: the card and the upload plan; the Hub itself is replaced by a recorder (it cannot
exist here), everything else is real."""

import pytest

from pad_pipeline.annotate.config import AnnotateConfig
from pad_pipeline.annotate.plan import make_or_resume_plan
from pad_pipeline.core.errors import PadError
from pad_pipeline.dataset.records import Sample, SampleRecord
from pad_pipeline.dataset.writer import write_shard
from pad_pipeline.tools.publish import commit_batches, publish


class RecordingHub:
    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", repo_id, kw))

    def create_commit(self, repo_id, operations, commit_message, **kw):
        self.calls.append(("commit", repo_id, [op.path_in_repo for op in operations], commit_message))


def _build(tmp_path, commit_all=True):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        (src / f"{i}.jpg").write_bytes(b"x")
    out = tmp_path / "out"
    cfg = AnnotateConfig(source={"kind": "image_dir", "path": str(src)}, output={"shard_size": 2})
    make_or_resume_plan(cfg, str(out))
    (out / "config.yaml").write_text("x: 1\n")
    for i in range(2 if commit_all else 1):
        samples = [Sample(f"k{i}{j}", b"\xff\xd8", SampleRecord(f"{i}{j}", [2, 2], "", ["dog", "grass"][: j + 1], []))
                   for j in range(2)]
        write_shard(str(out), i, samples, {}, {"models": {"tag": {"checkpoint": "ram++"}}})
    return out


def test_publish_uploads_data_then_card(tmp_path):
    out = _build(tmp_path)
    hub = RecordingHub()
    plan = publish(str(out), "org/pad-test", api=hub)
    assert hub.calls[0][0] == "create_repo" and hub.calls[0][2]["repo_type"] == "dataset"
    uploaded = [f for call in hub.calls[1:-1] for f in call[2]]
    assert "pad-000001.tar" in uploaded and "plan.json" in uploaded and "pad-000000.json" in uploaded
    assert hub.calls[-1][2] == ["README.md"]
    assert "| dog | 4 |" in plan.card and "| grass | 2 |" in plan.card
    assert "ram++" in plan.card and "path: pad-*.tar" in plan.card


def test_partial_build_is_refused(tmp_path):
    out = _build(tmp_path, commit_all=False)
    with pytest.raises(PadError, match="not committed"):
        publish(str(out), "org/pad-test", api=RecordingHub())
    assert publish(str(out), "org/x", dry_run=True, allow_partial=True).files


def test_commit_batches_bound_count_and_size():
    files = [(f"f{i}", 3) for i in range(7)]
    assert commit_batches(files, max_files=3, max_bytes=100) == [["f0", "f1", "f2"], ["f3", "f4", "f5"], ["f6"]]
    assert commit_batches(files, max_files=100, max_bytes=6) == [["f0", "f1"], ["f2", "f3"], ["f4", "f5"], ["f6"]]
