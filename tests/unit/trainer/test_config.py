"""The checked-in manifests validate; mistakes are one-line errors naming the field; DeepSpeed 'auto' fill."""

import json

import pytest

from pad_pipeline.core.errors import ConfigError
from trainer.config import load_pretrain_config
from trainer.engine import read_deepspeed_json, resolve_deepspeed_config


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


@pytest.mark.parametrize("path", ["cluster/deepspeed/zero2.json", "cluster/deepspeed/zero3.json"])
def test_deepspeed_auto_values_are_filled(path):
    cfg = resolve_deepspeed_config(read_deepspeed_json(path), micro_batch=32, grad_accum=2, world=4, lr=1e-3, weight_decay=0.0,
                                   grad_clip=1.0, bf16=True)
    assert "auto" not in json.dumps(cfg)
    assert cfg["train_batch_size"] == 256 and cfg["bf16"]["enabled"] is True
    assert cfg["optimizer"]["type"] == "AdamW" and cfg["optimizer"]["params"]["lr"] == 1e-3
    assert cfg["zero_optimization"]["stage"] == (2 if "zero2" in path else 3)
