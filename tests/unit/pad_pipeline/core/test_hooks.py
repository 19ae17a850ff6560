"""Test hooks come from PAD_TEST_HOOKS, never from the manifest schema a user sees."""

import json

import pytest

from pad_pipeline.annotate.config import AnnotateConfig, RunnerConfig
from pad_pipeline.core.errors import ConfigError
from pad_pipeline.core.hooks import ENV, Hooks, read_hooks


def test_unset_means_no_fault(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert read_hooks() == Hooks(kill_probability=0.0, pause_before_commit_s=0.0, pause_in_model_load_s=0.0)


def test_the_env_var_sets_hooks(monkeypatch):
    monkeypatch.setenv(ENV, json.dumps({"pause_before_commit_s": 2.5, "kill_probability": 0.1}))
    hooks = read_hooks()
    assert (hooks.pause_before_commit_s, hooks.kill_probability, hooks.pause_in_model_load_s) == (2.5, 0.1, 0.0)


@pytest.mark.parametrize("raw", ['{"pause_before_commit": 1}', '{"kill_probability": 2}', "not json"])
def test_a_bad_value_is_one_line(monkeypatch, raw):
    monkeypatch.setenv(ENV, raw)
    with pytest.raises(ConfigError, match=ENV) as err:
        read_hooks()
    assert "\n" not in str(err.value)


def test_hooks_are_not_in_the_user_schema():
    schema = json.dumps(AnnotateConfig.model_json_schema())
    assert "fault_" not in schema and "pause_before_commit" not in schema
    assert not [f for f in RunnerConfig.model_fields if f.startswith("fault_")]
