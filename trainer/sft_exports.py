"""The exports at the end of `pad sft`, written from the final checkpoint (DeepSpeed-free, in the driver).

The trained VLM is loaded once from the newest complete checkpoint (`trainer.sft_weights.load_trained_vlm`,
the same path `pad export RUN` takes) and handed to the exporters' stage-2 hook
(`trainer.export_run.export_stage2`: PAD's own format in `RUN/export`, then each of `export.formats`;
`c_abstractor` gets PAD's format only). A failed export does not undo the training: it is reported with the
command that retries it, and `pad sft` exits 1.
"""

from __future__ import annotations

import sys

from pad_pipeline.core.errors import PadError
from trainer.sft_config import SftConfig


def write_exports(cfg: SftConfig) -> int:
    """0 when the exports were written, 1 when one failed (the checkpoints stay)."""
    from trainer.export_run import export_stage2
    from trainer.sft_weights import load_trained_vlm

    vlm, _ = load_trained_vlm(cfg.train.output_dir)
    try:
        written = export_stage2(cfg, vlm)
    except PadError as e:
        print(f"pad sft: error: export failed ({e}); retry with `pad export {cfg.train.output_dir} --format "
              f"hf|llava|pad`", file=sys.stderr)
        return 1
    for fmt, path in written.items():
        print(f"pad sft: {fmt} export written to {path}", file=sys.stderr)
    return 0
