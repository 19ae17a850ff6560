"""One list of export formats and dtypes: the manifests, the exporters and `pad export`'s command line agree."""

import pytest

from pad_pipeline.cli import build_parser
from trainer.config.sections import ExportConfig
from trainer.config.sft import EXPORT_FORMATS
from trainer.export.formats import DTYPE_NAMES, FORMATS
from trainer.export.spec import DTYPES


def _choices(flag: str) -> tuple:
    export = build_parser()._subparsers._group_actions[0].choices["export"]  # type: ignore[union-attr]
    return tuple(next(a for a in export._actions if flag in a.option_strings).choices)


def test_cli_manifests_and_exporters_read_the_same_lists():
    assert _choices("--format") == FORMATS and _choices("--dtype") == DTYPE_NAMES
    assert tuple(DTYPES) == DTYPE_NAMES and set(EXPORT_FORMATS) == set(FORMATS) - {"pad"}
    assert ExportConfig(dtype="float16").dtype == "float16"
    with pytest.raises(ValueError):
        ExportConfig(dtype="int8")
