"""The kept METEOR process survives its Java dying, between scorings or during one. (That a kept process
scores as a fresh one does: test_caption_metrics against COCOEvalCap.)"""

from __future__ import annotations

import pytest

from trainer.eval import meteor
from trainer.eval.meteor import SharedMeteor

GTS = {"1": ["a red circle next to a blue square", "two shapes on grey"], "2": ["a small green triangle"],
       "3": ["a big yellow star on the left", "a star"]}
RES_A = {"1": ["a red circle and a blue square"], "2": ["a green triangle"], "3": ["a yellow star"]}
RES_B = {"1": ["two squares"], "2": ["a small green triangle"], "3": ["a big star on the right"]}


def test_a_kept_process_survives_its_java_dying() -> None:
    first = SharedMeteor().compute_score(GTS, RES_A)
    process = meteor._scorer.meteor_p
    other = SharedMeteor().compute_score(GTS, RES_B)
    assert other != first and meteor._scorer.meteor_p is process  # scored again, on the kept process

    process.kill()  # Java died between scorings: the next starts another, which scores the same
    process.wait()
    again = SharedMeteor().compute_score(GTS, RES_A)
    assert again[0] == pytest.approx(first[0], abs=1e-12) and again[1] == pytest.approx(first[1], abs=1e-12)
    assert meteor._scorer.meteor_p is not process

    process = meteor._scorer.meteor_p
    process.stdout.close()  # dies mid-scoring: that call raises, and the process is ended, not left locked
    with pytest.raises((ValueError, OSError)):
        SharedMeteor().compute_score(GTS, RES_A)
    assert process.poll() is not None and meteor._scorer is None
