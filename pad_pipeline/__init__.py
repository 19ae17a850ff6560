"""PAD annotation side: sources -> plan -> intake -> model stages -> reproducible WebDataset shards.

`pad annotate` (see `pad_pipeline.cli`) drives it; `pad_pipeline.dataset.reader` reads what it commits.
"""

__version__ = "0.1.0"
