"""The stage-2 manifest: LLaVA-1.5's finetune defaults, the checked-in manifests, one-line errors."""

import pytest

from pad_pipeline.core.errors import ConfigError
from trainer.config.pretrain import load_pretrain_config
from trainer.config.sft import SftConfig, load_sft_config

DATA = {"path": "c.json", "image_folder": "images"}


def test_defaults_are_llava_1_5_finetune():
    cfg = SftConfig.model_validate({"data": DATA})
    t = cfg.train
    assert (t.lr, t.global_batch_size, t.warmup_ratio, t.epochs, t.precision) == (2e-5, 128, 0.03, 1.0, "auto")
    assert t.deepspeed == "cluster/deepspeed/zero3.json" and cfg.model.llm.gradient_checkpointing
    assert cfg.data.template == "vicuna_v1" and cfg.data.image_aspect == "pad" and cfg.data.on_bad_sample == "error"
    assert cfg.export.formats == ["hf", "llava"]


def test_the_paper_manifest_starts_from_the_stage1_run():
    cfg = load_sft_config("manifests/sft-vicuna7b.yaml")
    assert cfg.init.projector == load_pretrain_config("manifests/pretrain-vicuna7b.yaml").train.output_dir
    assert cfg.grad_accum == 1 and cfg.data.group_by_modality_length
    demo = load_sft_config("manifests/sft-demo.yaml")
    assert demo.model.llm.checkpoint == "tiny-random" and demo.init.projector == "runs/pretrain-demo"


@pytest.mark.parametrize(("override", "message"), [
    ("data.template=chatml", "field 'data.template': 'chatml' is not a known template"),
    ("data.on_bad_sample=ignore", "field 'data.on_bad_sample'"),
    ("export.formats=[onnx]", "unknown export formats"),
    ("train.micro_batch_size=48", "must be a multiple of micro_batch_size"),
])
def test_mistakes_are_one_line_errors_naming_the_field(override, message):
    with pytest.raises(ConfigError, match=message):
        load_sft_config("manifests/sft-demo.yaml", [override])
