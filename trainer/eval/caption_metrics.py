"""Caption quality (Table 4): pycocoevalcap's PTB tokenizer, BLEU-1..4, METEOR, ROUGE-L, CIDEr and SPICE.

`score_captions` runs pycocoevalcap 1.2's scorers the way its `COCOEvalCap.evaluate` does (references and
predictions PTB-tokenized by Stanford CoreNLP, then each scorer on the same tokens), so the numbers equal
what COCOEvalCap reports for the same captions. Java runs the tokenizer and METEOR (their jars ship in the
wheel; METEOR's process is kept between calls, `meteor.py`): `check_caption_scoring` says so in one line
before any model loads (`make java` installs Debian's headless JRE). SPICE needs, beyond its bundled jar,
Stanford CoreNLP 3.6.0, which pycocoevalcap downloads on first use; PAD never downloads, so SPICE is scored
only when those jars are already in place, and otherwise `CaptionScores.missing` says why it is absent (the
table prints that reason instead of a number).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from pad_pipeline.core.errors import PadError
from trainer.eval.meteor import SharedMeteor

BLEU = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4")
METRICS = (*BLEU, "METEOR", "ROUGE_L", "CIDEr", "SPICE")


@dataclass(frozen=True)
class CaptionScores:
    """Corpus score per metric, per-image scores (metric -> image id -> score), and absent metrics with why."""

    corpus: dict[str, float]
    per_image: dict[str, dict[str, float]]
    missing: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"corpus": self.corpus, "missing": self.missing}


def _tokenizer_dir() -> Path:
    from pycocoevalcap.tokenizer import ptbtokenizer  # pycocoevalcap itself is a namespace package (no __file__)

    return Path(ptbtokenizer.__file__).parent


def check_caption_scoring() -> None:
    """PadError unless pycocoevalcap can tokenize and score here (Java, and a writable tokenizer folder)."""
    if shutil.which("java") is None:
        raise PadError("captions: scoring needs a Java runtime (pycocoevalcap's PTB tokenizer and METEOR run on it) "
                       "and `java` is not on PATH: install one (`make java` installs Debian's default-jre-headless)")
    tokenizer = _tokenizer_dir()
    if not os.access(tokenizer, os.W_OK):  # PTBTokenizer writes its input file beside its jar
        raise PadError(f"captions: pycocoevalcap's tokenizer writes a temporary file in {tokenizer}, which is not "
                       "writable: run pad eval as a user who may write there, or install PAD's venv as that user")


def spice_unavailable() -> str | None:
    """Why SPICE cannot be scored offline here, or None when it can."""
    from pycocoevalcap.spice import get_stanford_models as models
    from pycocoevalcap.spice.spice import SPICE_JAR

    spice_dir = Path(models.__file__).parent
    if shutil.which("java") is None:
        return "no Java runtime (`make java` installs one)"
    if not (spice_dir / SPICE_JAR).is_file():
        return f"{spice_dir / SPICE_JAR} is missing (reinstall pycocoevalcap)"
    lib = spice_dir / models.SPICELIB
    jars = [lib / f"{models.JAR}.jar", lib / f"{models.JAR}-models.jar"]
    absent = [j.name for j in jars if not j.is_file()]
    if absent:
        return (f"it needs Stanford CoreNLP ({' and '.join(absent)} in {lib}), which pycocoevalcap "
                f"downloads on first use and PAD never does; copy them there from {models.CORENLP}.zip to score it")
    return None


def _tokenize(captions: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tokenized: dict[str, list[str]] = PTBTokenizer().tokenize(
        {key: [{"caption": c} for c in texts] for key, texts in captions.items()})
    return tokenized


def _scorers(with_spice: bool) -> list[tuple[Callable[[], Any], str | tuple[str, ...]]]:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.spice.spice import Spice

    scorers: list[tuple[Callable[[], Any], str | tuple[str, ...]]] = [
        (lambda: Bleu(4), BLEU), (SharedMeteor, "METEOR"), (Rouge, "ROUGE_L"), (Cider, "CIDEr")]
    return [*scorers, (Spice, "SPICE")] if with_spice else scorers


def _per_image(ids: Sequence[str], scores: Any, metric: str) -> dict[str, float]:
    if metric == "SPICE":  # one dict of sub-scores per image; its corpus score is the mean of "All" F-scores
        return {i: float(s["All"]["f"]) for i, s in zip(ids, scores, strict=True)}
    return {i: float(s) for i, s in zip(ids, scores, strict=True)}


def score_captions(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
                   spice: bool = True) -> CaptionScores:
    """Score one generated caption per image id against that image's reference captions (all of them).

    Every prediction needs references; the corpus scores are over the predicted images. `spice=False` skips
    SPICE (slow: a CoreNLP parse of every caption) and records that it was not asked for.
    """
    if not predictions:
        raise ValueError("no predictions to score")
    unreferenced = [i for i in predictions if not references.get(i)]
    if unreferenced:
        raise ValueError(f"predictions without references: {unreferenced[:5]}")
    check_caption_scoring()
    ids = list(predictions)
    gts = _tokenize({i: list(references[i]) for i in ids})
    res = _tokenize({i: [predictions[i]] for i in ids})
    missing: dict[str, str] = {}
    reason = spice_unavailable() if spice else "not asked for (spice=False)"
    if reason:
        missing["SPICE"] = reason
    corpus: dict[str, float] = {}
    per_image: dict[str, dict[str, float]] = {}
    for make, names in _scorers(with_spice=reason is None):
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # BLEU prints its counts
                scorer = make()
                score, scores = scorer.compute_score(gts, res)
        except (subprocess.CalledProcessError, OSError) as e:
            if names != "SPICE":
                raise
            missing["SPICE"] = f"its Java run failed ({e})"
            continue
        if isinstance(names, tuple):
            for name, s, ss in zip(names, score, scores, strict=True):
                corpus[name], per_image[name] = float(s), _per_image(ids, ss, name)
        else:
            corpus[names], per_image[names] = float(score), _per_image(ids, scores, names)
    return CaptionScores(corpus, per_image, missing)
