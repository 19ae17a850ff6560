"""Every file and folder name of a training run's folder, in one place (as `pad_pipeline.dataset.layout` is
for a PAD build).

```
RUN/config.yaml                          the resolved manifest the run trained with
RUN/metrics.jsonl                        the run log: one JSON line per optimizer step
RUN/tensorboard/                         the same scalars for TensorBoard
RUN/skipped-samples.jsonl                stage 2: the conversations the data check skipped
RUN/data-index.parquet                   stage 2: the index of the conversation JSON (`data.chat.index`)
RUN/checkpoints/latest                   the newest checkpoint's name (a hint)
RUN/checkpoints/step-NNNNNNNN/           a complete checkpoint (`.partial` while it is written)
    trainer_state.json                   its step, schedule and data position
    projector.safetensors                the projector's weights
    llm.safetensors                      stage 2: the language model's weights
RUN/export/                              PAD's format (stage 1 also LLaVA's `mm_projector.bin`)
RUN/export-hf/                           Hugging Face's LlavaForConditionalGeneration folder
RUN/export-llava/                        LLaVA's own LlavaLlamaForCausalLM folder
```
Nothing else in `trainer/` spells these names: `RunLayout(run).checkpoint(4)` is step 4's folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
SKIPPED_FILE = "skipped-samples.jsonl"
DATA_INDEX_FILE = "data-index.parquet"
CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_PREFIX = "step-"
LATEST_FILE = "latest"
PARTIAL_SUFFIX = ".partial"
STATE_FILE = "trainer_state.json"
PROJECTOR_FILE = "projector.safetensors"
LLM_FILE = "llm.safetensors"
LLAVA_PROJECTOR_FILE = "mm_projector.bin"
EXPORT_FOLDERS = {"pad": "export", "hf": "export-hf", "llava": "export-llava"}


def checkpoint_name(step: int) -> str:
    """`step-00000004`: the folder name of step 4's checkpoint."""
    return f"{CHECKPOINT_PREFIX}{step:08d}"


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run folder `root` (a `train.output_dir`)."""

    root: str

    def _join(self, *names: str) -> str:
        return os.path.join(self.root, *names)

    @property
    def config(self) -> str:
        return self._join(CONFIG_FILE)

    @property
    def metrics(self) -> str:
        return self._join(METRICS_FILE)

    @property
    def tensorboard(self) -> str:
        return self._join(TENSORBOARD_DIR)

    @property
    def skipped(self) -> str:
        return self._join(SKIPPED_FILE)

    @property
    def data_index(self) -> str:
        return self._join(DATA_INDEX_FILE)

    @property
    def checkpoints(self) -> str:
        return self._join(CHECKPOINTS_DIR)

    @property
    def latest(self) -> str:
        return self._join(CHECKPOINTS_DIR, LATEST_FILE)

    def checkpoint(self, step: int) -> str:
        return self._join(CHECKPOINTS_DIR, checkpoint_name(step))

    def partial(self, step: int) -> str:
        return self.checkpoint(step) + PARTIAL_SUFFIX

    def export(self, fmt: str = "pad") -> str:
        """The folder of export format `fmt` (`pad`, `hf` or `llava`)."""
        return self._join(EXPORT_FOLDERS[fmt])

    @property
    def exported_projector(self) -> str:
        return os.path.join(self.export(), PROJECTOR_FILE)

    @property
    def llava_projector(self) -> str:
        return os.path.join(self.export(), LLAVA_PROJECTOR_FILE)
