"""Tag stage: images -> `tags` (TagResult per image, best first).

Host syncs per batch: 1 (the scores of every image copied to the host once, `vocabulary.select_tags`).
"""

from __future__ import annotations

from pad_pipeline.annotate.stages.base import Batch, ModelStage


class TagStage(ModelStage):
    name, role = "tag", "tagger"

    def __call__(self, batch: Batch) -> Batch:
        return {**batch, "tags": self.model.tag(batch["image"])}
