"""Caption metrics equal pycocoevalcap's own COCOEvalCap on the same captions; SPICE's absence is stated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pad_pipeline.core.errors import PadError
from trainer.eval import caption_metrics
from trainer.eval.caption_metrics import BLEU, check_caption_scoring, score_captions, spice_unavailable

REFERENCES = {
    139: ["A woman stands in the dining area at the table.", "A room with chairs, a table, and a woman in it.",
          "A woman standing in a kitchen by a window"],
    285: ["A big burly grizzly bear is show with grass in the background.", "The large brown bear has a black nose.",
          "Closeup of a brown bear sitting in a grassy area."],
    632: ["Bedroom scene with a bookcase, blue comforter and window.", "A bedroom with a bookshelf full of books."],
    724: ["A stop sign is mounted upside-down on it's post. ", "A stop sign that is hanging upside down."],
}
PREDICTIONS = {139: "a woman standing in a kitchen next to a table", 285: "a brown bear sitting in the grass",
               632: "a bedroom with a bed and a book shelf", 724: "a red stop sign on a pole"}


class _NoSpice:
    """Stands in for pycocoevalcap's Spice, whose constructor would download Stanford CoreNLP."""

    def compute_score(self, gts: dict[Any, Any], res: dict[Any, Any]) -> tuple[float, list[float]]:
        return 0.0, [0.0] * len(gts)

    def method(self) -> str:
        return "SPICE"


def _coco_eval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from pycocoevalcap import eval as cocoeval
    from pycocotools.coco import COCO

    if spice_unavailable():
        monkeypatch.setattr(cocoeval, "Spice", _NoSpice)
    path = tmp_path / "captions.json"
    path.write_text(json.dumps({
        "images": [{"id": i, "file_name": f"{i:012d}.jpg", "width": 8, "height": 8} for i in REFERENCES],
        "annotations": [{"id": n, "image_id": i, "caption": c}
                        for n, (i, c) in enumerate((i, c) for i, cs in REFERENCES.items() for c in cs)]}))
    coco = COCO(str(path))
    result = cocoeval.COCOEvalCap(coco, coco.loadRes([{"image_id": i, "caption": c} for i, c in PREDICTIONS.items()]))
    result.evaluate()
    return result


def test_scores_equal_coco_eval_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    theirs = _coco_eval(tmp_path, monkeypatch)  # pycocoevalcap's own scorers, METEOR on a fresh Java process
    score_captions({"1": "a cat on a mat"}, {"1": ["a cat", "a mat"]}, spice=False)  # ours: METEOR's process kept
    ours = score_captions({str(i): c for i, c in PREDICTIONS.items()},
                          {str(i): refs for i, refs in REFERENCES.items()})
    metrics = [*BLEU, "METEOR", "ROUGE_L", "CIDEr", *(() if ours.missing else ("SPICE",))]
    assert sorted(ours.corpus) == sorted(metrics)
    for m in metrics:
        assert ours.corpus[m] == pytest.approx(theirs.eval[m], abs=1e-9), m
        if m != "SPICE":
            assert ours.per_image[m] == pytest.approx({str(i): e[m] for i, e in theirs.imgToEval.items()}, abs=1e-9)
    assert 0.0 < ours.corpus["METEOR"] < 1.0 and ours.corpus["CIDEr"] > 0.0  # really scored, not zeros
    if ours.missing:
        assert ours.missing["SPICE"] and not ours.missing["SPICE"].startswith("SPICE")  # the table names the metric


def test_spice_absence_names_the_missing_jars(monkeypatch: pytest.MonkeyPatch) -> None:
    from pycocoevalcap.spice import get_stanford_models

    monkeypatch.setattr(get_stanford_models, "JAR", "stanford-corenlp-0.0")
    reason = spice_unavailable()
    assert reason is not None and "stanford-corenlp-0.0.jar and stanford-corenlp-0.0-models.jar" in reason
    assert "never" in reason and "download" in reason
    monkeypatch.setenv("PATH", "/nonexistent")
    assert spice_unavailable() == "no Java runtime (`make java` installs one)"


def test_without_java_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PadError, match="needs a Java runtime .*make java"):
        check_caption_scoring()
    with pytest.raises(PadError, match="needs a Java runtime"):
        score_captions({"1": "a cat"}, {"1": ["a cat"]})


def test_spice_not_asked_for_and_bad_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caption_metrics, "_tokenize", lambda caps: {k: [c.lower() for c in v] for k, v in caps.items()})
    scores = score_captions({"1": "a cat on a mat"}, {"1": ["a cat on a mat", "a cat"]}, spice=False)
    assert scores.missing == {"SPICE": "not asked for (spice=False)"}
    assert scores.corpus["Bleu_1"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="without references"):
        score_captions({"1": "a cat", "2": "a dog"}, {"1": ["a cat"]})
    with pytest.raises(ValueError, match="no predictions"):
        score_captions({}, {"1": ["a cat"]})
