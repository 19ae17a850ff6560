"""Fields that change speed, not output (`models.compile`, the text cache): outside the build's identity."""

from pad_pipeline.annotate.config import AnnotateConfig
from pad_pipeline.annotate.plan import annotation_config_hash, changed_fields, make_or_resume_plan
from pad_pipeline.core.config import dump_resolved
from pad_pipeline.dataset.layout import BuildLayout


def _cfg(folder, **models):
    return AnnotateConfig(source={"kind": "image_dir", "path": str(folder)}, models={"preset": "tiny-random", **models})


def test_compile_changes_neither_the_hash_nor_the_changed_fields(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jpg").write_bytes(b"x")
    plain, compiled = _cfg(src), _cfg(src, compile=True)
    assert compiled.models.compile and annotation_config_hash(plain) == annotation_config_hash(compiled)
    assert annotation_config_hash(plain) != annotation_config_hash(_cfg(src, dtype="float16"))
    out = str(tmp_path / "out")
    plan = make_or_resume_plan(plain, out)
    dump_resolved(plain, BuildLayout(out).config)
    assert changed_fields(out, compiled) == []
    assert [f.split(":")[0] for f in changed_fields(out, _cfg(src, dtype="float16"))] == ["models.dtype"]
    assert make_or_resume_plan(compiled, out) == plan  # a build resumes with compile switched on


def test_compile_options_are_speed_knobs_but_bf16_weights_change_the_build(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    plain = annotation_config_hash(_cfg(src))
    assert annotation_config_hash(_cfg(src, compile_detector=True, compile_mode="reduce-overhead")) == plain
    assert annotation_config_hash(_cfg(src, weights_dtype="bfloat16")) != plain  # other bytes: another build
