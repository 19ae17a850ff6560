"""One METEOR process per Python process, kept between scorings.

pycocoevalcap's `Meteor()` starts `java -jar meteor-1.5.jar -stdio` and its first score loads METEOR's
paraphrase tables: about 5 s, against about 0.03 s for a later score on the same process. `pad eval` scores
each model's captions (and again per seed in a miniature), so it keeps one process and reuses it. METEOR's
stdio mode scores each EVAL line from the statistics sent with it, so a reused process gives the numbers a
fresh one does. A scoring that fails (Java died, an unreadable answer) ends the process; the next starts anew.
The price: the process holds about 1 GB of host memory until the Python process exits.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

_lock = threading.Lock()
_scorer: Any = None


def _close() -> None:
    global _scorer
    scorer, _scorer = _scorer, None
    if scorer is not None:
        process = scorer.meteor_p
        process.stdin.close()
        process.kill()
        process.wait()


class SharedMeteor:
    """A pycocoevalcap Meteor scorer (same `compute_score`) whose Java process outlives this object."""

    def compute_score(self, gts: dict[str, list[str]], res: dict[str, list[str]]) -> tuple[float, list[float]]:
        global _scorer
        from pycocoevalcap.meteor.meteor import Meteor

        with _lock:
            if _scorer is not None and _scorer.meteor_p.poll() is not None:
                _scorer = None  # its Java exited: start another
            if _scorer is None:
                _scorer = Meteor()
            try:
                score, scores = _scorer.compute_score(gts, res)
            except BaseException:
                _scorer.lock = threading.Lock()  # Meteor.compute_score leaves its own lock held when it raises
                _close()
                raise
        return float(score), [float(s) for s in scores]


atexit.register(_close)
