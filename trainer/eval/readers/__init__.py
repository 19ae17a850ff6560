"""Benchmark readers of `pad eval`: the files users have -> `trainer.eval.items` (one module per format).

- `captions.read_captions`: COCO caption JSON (`coco_captions`) or Karpathy's split file (`karpathy`) -> CaptionItem
- `refer.read_refer`: the `refer` pickles (`refs(unc).p`, `refs(umd).p`) + COCO instances -> RecItem
- `parquet.check_parquet` / `read_parquet`: lmms-lab's RefCOCO* parquet splits -> RecItem
- `rec_splits.rec_split`: the paper's eight REC splits by dataset and split name, and where each lives

Each first checks paths, fields and splits and fails with a one-line `PadError` without decoding an image, so
`pad eval` opens every benchmark before any model loads.
"""

from trainer.eval.readers.captions import read_captions
from trainer.eval.readers.parquet import check_parquet, read_parquet
from trainer.eval.readers.rec_splits import PAPER_REC_SPLITS, RecSplit, rec_split
from trainer.eval.readers.refer import read_refer

__all__ = ["PAPER_REC_SPLITS", "RecSplit", "check_parquet", "read_captions", "read_parquet", "read_refer", "rec_split"]
