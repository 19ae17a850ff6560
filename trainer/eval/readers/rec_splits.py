"""The paper's REC splits (Table 5) by name, and where each lives in the forms users have it.

Table 5 reports Acc@0.5 on RefCOCO val/testA/testB and RefCOCO+ val/testA/testB (UNC splits, ``refs(unc).p``)
and RefCOCOg val/test (UMD splits, ``refs(umd).p``). `rec_split("refcoco", "testA")` names one of them, so a
manifest can say ``dataset: refcoco, split: testA`` and get: the refer files under the layout of
lichengunc/refer's ``data/`` folder (``ROOT/refcoco/refs(unc).p``, ``ROOT/refcoco/instances.json``, images in
``ROOT/images/mscoco/images/train2014``), the lmms-lab Hub dataset and parquet split holding the same
expressions, and lmms-eval's task for it (``refcoco_bbox_rec_testA``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pad_pipeline.core.errors import PadError

_SPLIT_BY = {"refcoco": "unc", "refcoco+": "unc", "refcocog": "umd"}
_HUB = {"refcoco": "RefCOCO", "refcoco+": "RefCOCOplus", "refcocog": "RefCOCOg"}


@dataclass(frozen=True)
class RecSplit:
    """One REC split of the paper: `dataset` (refcoco, refcoco+, refcocog) and `split` (val, testA, testB, test)."""

    dataset: str
    split: str

    @property
    def name(self) -> str:
        """The table column (and `rec.splits` key): ``refcoco_testA``."""
        return f"{self.dataset}_{self.split}"

    @property
    def refs_file(self) -> str:
        return f"refs({_SPLIT_BY[self.dataset]}).p"

    @property
    def hub_dataset(self) -> str:
        """The lmms-lab dataset with this split's parquet files (``data/{split}-*.parquet``)."""
        return f"lmms-lab/{_HUB[self.dataset]}"

    @property
    def lmms_eval_task(self) -> str:
        return f"{self.dataset}_bbox_rec_{self.split}"

    def refer_paths(self, root: str | Path) -> tuple[Path, Path, Path]:
        """refs file, instances.json and train2014 folder under a refer ``data/`` folder `root`."""
        root = Path(root)
        return (root / self.dataset / self.refs_file, root / self.dataset / "instances.json",
                root / "images" / "mscoco" / "images" / "train2014")


PAPER_REC_SPLITS: tuple[RecSplit, ...] = (
    *(RecSplit(d, s) for d in ("refcoco", "refcoco+") for s in ("val", "testA", "testB")),
    RecSplit("refcocog", "val"), RecSplit("refcocog", "test"),
)


def rec_split(dataset: str, split: str) -> RecSplit:
    """The paper's split `split` of `dataset`; a PadError listing the valid pairs otherwise."""
    for s in PAPER_REC_SPLITS:
        if (s.dataset, s.split) == (dataset, split):
            return s
    valid = ", ".join(f"{s.dataset} {s.split}" for s in PAPER_REC_SPLITS)
    raise PadError(f"rec: {dataset} {split} is not a REC split of the paper's Table 5: use one of {valid}")
