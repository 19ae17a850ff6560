"""The one config idiom: dotted paths, overrides, renamed fields, the presets hook, one-line errors."""

from typing import Any

import pytest
import yaml
from pydantic import Field, field_validator

from pad_pipeline.core.config import (
    ConfigModel,
    apply_overrides,
    build_config,
    check_renamed,
    config_hash,
    get_dotted,
    load_config,
    set_dotted,
)
from pad_pipeline.core.errors import ConfigError
from pad_pipeline.core.registry import Registry

SHAPES = Registry("shape", {"circle": "math:pi", "square": "math:tau"})


class Inner(ConfigModel):
    kind: str = "circle"
    size: int = Field(1, ge=1)

    @field_validator("kind")
    @classmethod
    def _known(cls, kind: str) -> str:
        return SHAPES.check(kind, "inner.kind")


class Toy(ConfigModel):
    name: str = "toy"
    inner: Inner = Inner()

    RENAMED = {"inner.count": "inner.size"}

    @classmethod
    def apply_presets(cls, data: dict[str, Any]) -> dict[str, Any]:
        if data.get("preset") == "big":  # the manifest's own fields win over the preset's
            data = {k: v for k, v in data.items() if k != "preset"}
            return {**data, "inner": {"size": 9, **data.get("inner", {})}}
        return data


def _manifest(tmp_path, data) -> str:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_get_dotted_walks_nested_mappings_and_names_a_missing_path():
    data = {"a": {"b": {"c": 3}}, "x": 1}
    assert get_dotted(data, "a.b.c") == 3 and get_dotted(data, "a.b") == {"c": 3}
    for missing in ("a.b.d", "x.y", "z"):
        with pytest.raises(KeyError, match=missing):
            get_dotted(data, missing)


def test_set_dotted_creates_levels_and_refuses_to_walk_through_a_value():
    data: dict[str, Any] = {"a": {"keep": 1}, "x": 1}
    set_dotted(data, "a.b.c", 2)
    assert data == {"a": {"keep": 1, "b": {"c": 2}}, "x": 1}
    with pytest.raises(ConfigError, match=r"^x is not a mapping$"):
        set_dotted(data, "x.y", 3)
    with pytest.raises(ConfigError, match="empty field name"):
        set_dotted(data, " . ", 3)


def test_overrides_parse_yaml_values_on_a_copy():
    base = {"a": {"b": 1}}
    out = apply_overrides(base, ["a.b=2", "a.flag=true", "a.list=[1, 2]", "a.text=hello", "a.empty="])
    assert out == {"a": {"b": 2, "flag": True, "list": [1, 2], "text": "hello", "empty": ""}}
    assert base == {"a": {"b": 1}}  # the manifest's data is left alone


@pytest.mark.parametrize("item, message", [
    ("a.b", r"^override 'a.b': expected key.sub=value$"),
    ("a.b.c=1", r"^override 'a.b.c=1': a.b is not a mapping$"),
    ("=1", r"^override '=1': empty field name"),
])
def test_bad_overrides_are_one_line_errors(item, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides({"a": {"b": 1}}, [item])


def test_check_renamed_names_the_new_field():
    check_renamed({"inner": {"size": 1}}, Toy.RENAMED)  # the new name passes
    with pytest.raises(ConfigError, match=r"^field 'inner.count' was renamed to 'inner.size'$"):
        check_renamed({"inner": {"count": 1}}, Toy.RENAMED)


def test_load_config_applies_overrides_then_presets_then_validates(tmp_path):
    path = _manifest(tmp_path, {"preset": "big", "inner": {"kind": "square"}})
    cfg = load_config(path, [], Toy)
    assert (cfg.inner.kind, cfg.inner.size) == ("square", 9)
    assert load_config(path, ["inner.size=4"], Toy).inner.size == 4  # an override beats the preset
    plain = load_config(_manifest(tmp_path, {}), ["preset=big"], Toy)  # an override can choose the preset
    assert plain.inner.size == 9


@pytest.mark.parametrize("data, overrides, message", [
    ({"inner": {"count": 2}}, [], r"m\.yaml: field 'inner\.count' was renamed to 'inner\.size'$"),
    ({}, ["inner.count=2"], r"m\.yaml: field 'inner\.count' was renamed to 'inner\.size'$"),
    ({"inner": {"kind": "hexagon"}}, [], r"m\.yaml: field 'inner\.kind': 'hexagon' is not a known shape; "
                                         r"valid: circle, square$"),
    ({"inner": {"size": 0}}, [], r"m\.yaml: field 'inner\.size': Input should be greater than or equal to 1"),
    ({"nmae": "x"}, [], r"m\.yaml: field 'nmae': Extra inputs are not permitted"),
])
def test_mistakes_are_one_line_errors_naming_file_and_field(tmp_path, data, overrides, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_config(_manifest(tmp_path, data), overrides, Toy)
    assert "\n" not in str(err.value)


def test_build_config_names_its_source():
    with pytest.raises(ConfigError, match=r"^bench: field 'inner\.kind'"):
        build_config({"inner": {"kind": "oval"}}, Toy, source="bench")


def test_unreadable_manifests_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="manifest not found"):
        load_config(str(tmp_path / "absent.yaml"), [], Toy)
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping, got list"):
        load_config(str(tmp_path / "list.yaml"), [], Toy)


def test_config_hash_is_an_identity_of_the_values():
    assert config_hash(Toy()) == config_hash(Toy.model_validate({"inner": {"size": 1}}))
    assert config_hash(Toy()) != config_hash(Toy(name="other"))
    assert config_hash(Toy(), exclude={"name"}) == config_hash(Toy(name="other"), exclude={"name"})
