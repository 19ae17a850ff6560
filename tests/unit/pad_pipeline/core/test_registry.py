"""The registry idiom: lazy builders, one-line errors listing the valid names, torch-free registry modules."""

import subprocess
import sys

import pytest
from helpers import REPO, subprocess_env

from pad_pipeline.annotate.models.registry import DETECTORS, SEGMENTERS, TAGGERS
from pad_pipeline.annotate.sources import SOURCES
from pad_pipeline.core.errors import ConfigError
from pad_pipeline.core.registry import Registry
from trainer.analysis.metrics import THRESHOLD_RULES
from trainer.models.registry import PROJECTORS

COLOURS = Registry("colour space", {"hsv": "colorsys:rgb_to_hsv", "yiq": "colorsys:rgb_to_yiq"})


def test_names_keep_registration_order_and_membership():
    assert COLOURS.names() == ("hsv", "yiq")
    assert "yiq" in COLOURS and "rgb" not in COLOURS


def test_check_returns_a_known_name_and_names_field_and_valid_names_otherwise():
    assert COLOURS.check("hsv", "image.space") == "hsv"
    with pytest.raises(ConfigError) as err:
        COLOURS.check("hsl", "image.space")
    assert str(err.value) == "field 'image.space': 'hsl' is not a known colour space; valid: hsv, yiq"


def test_get_imports_the_builder_only_when_asked(monkeypatch):
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    lazy = Registry("colour space", {"hsv": "colorsys:rgb_to_hsv"})
    assert "colorsys" not in sys.modules  # building the registry imported nothing
    rgb_to_hsv = lazy.get("hsv")
    assert "colorsys" in sys.modules and rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)


def test_get_of_an_unknown_name_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"^'cmyk' is not a known colour space; valid: hsv, yiq$"):
        COLOURS.get("cmyk")


def test_a_malformed_entry_is_refused_when_the_registry_is_made():
    with pytest.raises(ValueError, match="not 'module:function'"):
        Registry("colour space", {"hsv": "colorsys.rgb_to_hsv"})


@pytest.mark.parametrize("registry, names", [
    (TAGGERS, ("clip", "ram", "ram_plus")),
    (DETECTORS, ("grounding_dino", "mm_grounding_dino")),
    (SEGMENTERS, ("sam", "sam2")),
    (SOURCES, ("llava_json", "image_dir", "webdataset")),
    (PROJECTORS, ("linear", "mlp2x_gelu", "c_abstractor")),
    (THRESHOLD_RULES, ("mean_std", "relative", "absolute")),
])
def test_every_registered_builder_of_the_project_resolves(registry, names):
    assert registry.names() == names
    for name in names:
        assert callable(registry.get(name)), f"{registry.what} {name!r} points at nothing callable"


def test_registries_and_the_configs_that_check_them_import_neither_torch_nor_ray():
    code = ("import sys\n"
            "import pad_pipeline.annotate.config, pad_pipeline.annotate.models.registry\n"
            "import pad_pipeline.annotate.sources, trainer.config, trainer.models.registry\n"
            "print(sorted(m for m in ('torch', 'ray', 'transformers') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=subprocess_env(), capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"
