"""Model files checked before any work: missing files, folders that are no checkpoint, malformed hub ids."""

import subprocess
import sys

import pytest
from helpers import REPO, subprocess_env

from pad_pipeline.annotate.config import ModelsConfig
from pad_pipeline.annotate.models.checks import CHECKERS, check_hf_checkpoint, check_models
from pad_pipeline.annotate.models.registry import MODEL_PRESETS, MODEL_REGISTRIES
from pad_pipeline.core.errors import ConfigError


def _models(**sections) -> ModelsConfig:
    return ModelsConfig.model_validate({**MODEL_PRESETS["tiny-random"], **sections})


def _paper(root, **tagger) -> ModelsConfig:
    preset = MODEL_PRESETS["paper"]
    files = {k: str(root / v) for k, v in preset["tagger"].items() if k in ("checkpoint", "tag_list", "tag_thresholds")}
    return ModelsConfig.model_validate({**preset, "tagger": {**preset["tagger"], **files, **tagger}})


def test_every_registered_kind_has_a_checker():
    assert {role: set(CHECKERS[role]) for role in MODEL_REGISTRIES} == \
        {role: set(reg.names()) for role, reg in MODEL_REGISTRIES.items()}


def test_tiny_random_needs_no_file():
    check_models(_models())


def test_paper_preset_without_its_files_names_the_checkpoint_field_and_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    models = ModelsConfig.model_validate(MODEL_PRESETS["paper"])
    with pytest.raises(ConfigError) as err:
        check_models(models)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("field 'models.tagger.tag_list': checkpoints/ram_tag_list.txt does not exist")
    (tmp_path / "checkpoints").mkdir()
    for name in ("ram_tag_list.txt", "ram_tag_list_threshold.txt"):
        (tmp_path / "checkpoints" / name).write_text("cat\n")
    with pytest.raises(ConfigError, match=r"^field 'models\.tagger\.checkpoint': checkpoints/ram_plus_swin_large_14m"
                                          r"\.pth does not exist; download it from https://huggingface\.co/xinyu1205/"
                                          r"recognize-anything-plus-model or set models\.tagger\.checkpoint$"):
        check_models(models)
    (tmp_path / "checkpoints" / "ram_plus_swin_large_14m.pth").write_bytes(b"x")
    check_models(models)  # hub ids of the detector and segmenter are well-formed; nothing is downloaded


def test_ram_checkpoint_that_is_a_folder_and_plain_ram_hint(tmp_path):
    for name in ("ram_tag_list.txt", "ram_tag_list_threshold.txt"):
        (tmp_path / name).write_text("cat\n")
    models = _paper(tmp_path, kind="ram", checkpoint=str(tmp_path), tag_list=str(tmp_path / "ram_tag_list.txt"),
                    tag_thresholds=str(tmp_path / "ram_tag_list_threshold.txt"))
    with pytest.raises(ConfigError, match="is a folder, not a file"):
        check_models(models)
    models.tagger.checkpoint = str(tmp_path / "ram_swin_large_14m.pth")
    with pytest.raises(ConfigError, match="recognize_anything_model"):
        check_models(models)


def test_ram_without_tag_list_and_remote_urls_left_to_the_reader(tmp_path):
    (tmp_path / "w.pth").write_bytes(b"x")
    models = _models(tagger={"kind": "ram_plus", "checkpoint": str(tmp_path / "w.pth")})
    with pytest.raises(ConfigError, match=r"^field 'models\.tagger\.tag_list': RAM/RAM\+\+ need the tag list"):
        check_models(models)
    models.tagger.tag_list = "s3://bucket/ram_tag_list.txt"  # read by the actor; no network here
    check_models(models)
    models.tagger.checkpoint = f"file://{tmp_path}/missing.pth"
    with pytest.raises(ConfigError, match="missing.pth does not exist"):
        check_models(models)


@pytest.mark.parametrize("checkpoint, problem", [
    ("./models/sam", "does not exist"),
    ("/nowhere/sam-vit-huge", "does not exist"),
    ("facebook/sam/vit", "does not exist"),  # more than org/name: a path
    ("facebook/sam--vit", "nor a valid hub id"),
    ("face book/sam", "nor a valid hub id"),
    ("facebook/sam.git", "nor a valid hub id"),
    ("s3://bucket/sam", "is a URL"),
])
def test_malformed_or_missing_transformers_checkpoints(checkpoint, problem):
    with pytest.raises(ConfigError, match=r"^field 'models\.segmenter\.checkpoint': .*" + problem.replace(".", r"\.")):
        check_hf_checkpoint(checkpoint, "models.segmenter.checkpoint")


def test_transformers_folders_need_config_json(tmp_path):
    with pytest.raises(ConfigError, match="no config.json"):
        check_models(_models(detector={"kind": "grounding_dino", "checkpoint": str(tmp_path)}))
    (tmp_path / "config.json").write_text("{}")
    check_models(_models(detector={"kind": "grounding_dino", "checkpoint": str(tmp_path)}))
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ConfigError, match="is a file"):
        check_models(_models(segmenter={"kind": "sam", "checkpoint": str(tmp_path / "weights.bin")}))
    check_hf_checkpoint("IDEA-Research/grounding-dino-tiny", "models.detector.checkpoint")
    check_hf_checkpoint("bert-base-uncased", "models.detector.checkpoint")  # a namespace-less hub id


def test_the_checks_import_no_torch():
    code = ("import sys; import pad_pipeline.annotate.models.checks as c; "
            "from pad_pipeline.annotate.config import ModelsConfig; c.check_models(ModelsConfig()); "
            "c.check_hf_checkpoint('org/name', 'f'); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=subprocess_env())
