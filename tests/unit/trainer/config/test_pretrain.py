"""The checked-in manifests validate; mistakes are one-line errors naming the field; DeepSpeed 'auto' fill."""

import json
import subprocess
import sys
import time

import pytest
import yaml
from helpers import REPO, subprocess_env

from pad_pipeline.core.errors import ConfigError
from trainer.analysis.config import AnalyzeDataConfig
from trainer.config.pretrain import DataConfig, load_pretrain_config, resume_identity
from trainer.config.sections import PatchSampleConfig
from trainer.training.engine import read_deepspeed_json, resolve_deepspeed_config


def test_checked_in_manifests_validate():
    demo = load_pretrain_config("manifests/pretrain-demo.yaml")
    assert demo.model.llm.checkpoint == "tiny-random" and demo.data.path == "out/demo"
    paper = load_pretrain_config("manifests/pretrain-vicuna7b.yaml")
    assert paper.model.llm.checkpoint == "lmsys/vicuna-7b-v1.5"
    assert (paper.train.lr, paper.train.warmup_ratio, paper.train.beta_max, paper.train.global_batch_size) == \
        (1e-3, 0.03, 5.0, 256)
    assert paper.grad_accum == 1 and paper.launch.mode == "ray"
    assert load_pretrain_config("manifests/pretrain-vicuna7b.yaml", ["launch.num_workers=2"]).grad_accum == 4


def test_bad_fields_are_one_line_errors():
    with pytest.raises(ConfigError, match="field 'train.lrr'"):
        load_pretrain_config("manifests/pretrain-demo.yaml", ["train.lrr=1"])
    with pytest.raises(ConfigError, match="multiple of micro_batch_size"):
        load_pretrain_config("manifests/pretrain-demo.yaml", ["train.micro_batch_size=3"])
    with pytest.raises(ConfigError, match="square"):
        load_pretrain_config("manifests/pretrain-demo.yaml", ["model.projector.kind=c_abstractor",
                                                               "model.projector.num_tokens=10"])
    with pytest.raises(ConfigError, match=r"^manifests/pretrain-demo\.yaml: field 'model\.projector\.kind': "
                                          r"'mlp2x_gelo' is not a known projector; valid: linear, mlp2x_gelu, "
                                          r"c_abstractor$"):
        load_pretrain_config("manifests/pretrain-demo.yaml", ["model.projector.kind=mlp2x_gelo"])


def test_sample_fields_are_defined_once_for_pretraining_and_analysis():
    shared = set(PatchSampleConfig.model_fields)
    assert shared == {"image_aspect", "min_coverage", "max_regions"}
    for schema in (DataConfig, AnalyzeDataConfig):
        assert issubclass(schema, PatchSampleConfig)
        assert not shared & set(schema.__annotations__), f"{schema.__name__} redefines a shared field"


def test_resume_identity_reads_the_dotted_fields():
    cfg = load_pretrain_config("manifests/pretrain-demo.yaml", ["data.min_coverage=0.25", "train.seed=7"])
    identity = resume_identity(cfg)
    assert identity["data.min_coverage"] == 0.25 and identity["train.seed"] == 7
    assert identity["model"]["projector"]["kind"] == "mlp2x_gelu"


def test_a_projector_typo_exits_2_in_one_line_fast_before_anything_starts(tmp_path):
    data = yaml.safe_load(open(REPO / "manifests/pretrain-demo.yaml"))
    data["model"]["projector"] = {"kind": "mlp2x_gelo"}
    data["train"]["output_dir"] = str(tmp_path / "run")
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data))
    code = ("import sys\nfrom pad_pipeline.cli import main\n"
            f"rc = main(['pretrain', {str(path)!r}])\n"
            "print(sorted(m for m in ('torch', 'ray', 'deepspeed') if m in sys.modules))\nsys.exit(rc)\n")
    t0 = time.monotonic()
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=subprocess_env(), capture_output=True,
                         text=True, timeout=60)
    seconds = time.monotonic() - t0
    assert run.returncode == 2, run.stderr
    assert run.stderr.splitlines() == [f"pad: error: {path}: field 'model.projector.kind': 'mlp2x_gelo' is not "
                                       "a known projector; valid: linear, mlp2x_gelu, c_abstractor"]
    assert run.stdout.strip() == "[]" and seconds < 2.0, (run.stdout, seconds)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("path", ["cluster/deepspeed/zero2.json", "cluster/deepspeed/zero3.json"])
def test_deepspeed_auto_values_are_filled(path):
    cfg = resolve_deepspeed_config(read_deepspeed_json(path), micro_batch=32, grad_accum=2, world=4, lr=1e-3,
                                   weight_decay=0.0, grad_clip=1.0, bf16=True)
    assert "auto" not in json.dumps(cfg)
    assert cfg["train_batch_size"] == 256 and cfg["bf16"]["enabled"] is True
    assert cfg["optimizer"]["type"] == "AdamW" and cfg["optimizer"]["params"]["lr"] == 1e-3
    assert cfg["zero_optimization"]["stage"] == (2 if "zero2" in path else 3)
